"""Published weights (torchvision's), from the torch hub cache or a download, into a network of any head size.

A file already in the cache (``torch.hub.get_dir()/checkpoints/<file name of the URL>``, i.e.
``$TORCH_HOME/hub/checkpoints``) is used without touching the network: its sha256 must start with
the hash in its name, as torch.hub checks on download, and it is loaded with ``weights_only=True``.
Otherwise torchvision downloads it (``weights.get_state_dict(check_hash=True)``); offline, that is
one line naming the file, where it comes from and where to put it.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlparse

from edgekit.core.errors import EdgekitError
from edgekit.core.hashing import sha256_file
from edgekit.models._registry import ModelConfig, ModelSpec, build_model
from edgekit.models.checkpoint import read_checkpoint
from edgekit.models.weights import load_weights

# torch.hub's own convention (torch/hub.py HASH_REGEX): "name-<first hex digits of sha256>.ext".
HASH_IN_NAME = re.compile(r"-([a-f0-9]*)\.")
# Per socket operation, not for the whole download: a stalled connection fails instead of hanging.
DOWNLOAD_STALL_SECONDS = 60


@dataclass(frozen=True)
class PretrainedWeights:
    """One set of published weights: where it lives and the network it was saved from."""

    label: str  # e.g. "ResNet18_Weights.IMAGENET1K_V1"
    url: str
    categories: int  # outputs of the published head
    spec: ModelSpec  # the model as these weights expect it: their preprocessing (crop, resize, mean/std)
    options: dict  # builder options that rebuild the architecture the weights were saved from
    download: object  # () -> state_dict: torchvision's download (checks the hash, loads weights_only)

    @property
    def file_name(self) -> str:
        return Path(urlparse(self.url).path).name

    def cache_file(self) -> Path:
        import torch

        return Path(torch.hub.get_dir()) / "checkpoints" / self.file_name


def load_pretrained(weights: PretrainedWeights) -> tuple[dict, dict]:
    """(state_dict, record for the manifest): from the cache, else downloaded into it."""
    cached = weights.cache_file()
    record = {"pretrained": weights.label, "url": weights.url, "path": str(cached)}
    if cached.is_file():
        digest = sha256_file(cached)
        _check_hash(cached, digest)
        # The one checkpoint reader: torch.load(weights_only=True), a state_dict of tensors or one line.
        return read_checkpoint(cached).state_dict, {**record, "sha256": digest, "source": "cache"}
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_STALL_SECONDS)
    try:
        state_dict = weights.download()
    except RuntimeError as error:  # torch.hub's hash check of the downloaded bytes
        raise EdgekitError(f"the download of {weights.label} from {weights.url} is damaged (its hash does not "
                           "match); retry") from error
    except OSError as error:  # URLError (no network, DNS, proxy) is an OSError
        raise EdgekitError(
            f"cannot download {weights.label} (no network?): put {weights.file_name} from {weights.url} into "
            f"{cached.parent}/ (the torch hub cache; TORCH_HOME moves it)") from error
    finally:
        socket.setdefaulttimeout(previous)
    return state_dict, {**record, "sha256": sha256_file(cached) if cached.is_file() else None, "source": "download"}


def _check_hash(path: Path, digest: str) -> None:
    match = HASH_IN_NAME.search(path.name)
    if match and match.group(1) and not digest.startswith(match.group(1)):
        raise EdgekitError(f"cached weights {path} are not the published file: their sha256 starts "
                           f"{digest[:len(match.group(1))]}, the name says {match.group(1)}; delete the file and retry")


def classifier_keys(config: ModelConfig, other_classes: int) -> set[str]:
    """The tensors sized by the number of classes (every head, auxiliary ones included), found by
    building the network for two class counts on the meta device and comparing shapes: no guess
    about which layer is "the classifier"."""
    import torch

    with torch.device("meta"):
        ours = build_model(config).state_dict()
        theirs = build_model(replace(config, num_classes=other_classes)).state_dict()
    return {key for key, tensor in ours.items() if key in theirs and tensor.shape != theirs[key].shape}


def pretrained_module(config: ModelConfig, weights: PretrainedWeights, state_dict: dict, *, source: str):
    """``config``'s network with the published weights; when its head size differs from theirs, the
    class-sized tensors keep their fresh initialisation (returned, for the record) and every other
    tensor is loaded strictly."""
    module = build_model(config)
    fresh = {}
    if config.num_classes != weights.categories:
        head = classifier_keys(config, weights.categories)
        fresh = {key: value for key, value in module.state_dict().items() if key in head}
    load_weights(module, {**state_dict, **fresh}, source=source)
    return module.eval(), sorted(fresh)
