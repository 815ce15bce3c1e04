"""Training forwards that return auxiliary classifiers' outputs besides the logits.

torchvision's GoogLeNet and Inception-v3 return a named tuple in training mode (``GoogLeNetOutputs``,
``InceptionOutputs``: ``logits`` first, then ``aux_logits*``) and plain logits in eval mode, which is
what export and the runtimes see. Training adds the auxiliary heads' losses with the weights their
authors used, so the heads learn and every parameter gets a gradient (DDP requires it).
"""

from __future__ import annotations

from edgekit.core.errors import EdgekitError

# GoogLeNet: "the losses of the auxiliary classifiers were weighted by 0.3" (Szegedy et al. 2015, sec. 5).
# Inception-v3: 0.4, the weight of the authors' TF-slim training code (inception_v3 aux_logits loss).
AUXILIARY_LOSS_WEIGHTS = {"GoogLeNetOutputs": 0.3, "InceptionOutputs": 0.4}


def split_training_output(output) -> tuple[object, list[tuple[float, object]]]:
    """(logits, [(weight, auxiliary logits), ...]) of a training forward's output."""
    import torch

    if isinstance(output, torch.Tensor):
        return output, []
    kind = type(output).__name__
    weight = AUXILIARY_LOSS_WEIGHTS.get(kind)
    fields = getattr(output, "_fields", ())
    if weight is None or not fields or fields[0] != "logits":
        known = ", ".join(sorted(AUXILIARY_LOSS_WEIGHTS))
        raise EdgekitError(f"the model's training forward returned a {kind}, not a logits tensor; edgekit trains "
                           f"networks that return logits, or auxiliary outputs of the kinds {known}")
    auxiliary = [(weight, getattr(output, name)) for name in fields[1:]]
    # torchvision returns None for a head built with aux_logits=False.
    return output.logits, [(w, logits) for w, logits in auxiliary if logits is not None]


def training_loss(output, labels, loss_fn):
    """(logits, loss): the main loss plus the weighted auxiliary ones."""
    logits, auxiliary = split_training_output(output)
    loss = loss_fn(logits, labels)
    for weight, aux_logits in auxiliary:
        loss = loss + weight * loss_fn(aux_logits, labels)
    return logits, loss


def check_training_forward(model, images, device) -> None:
    """Refuse, before the first epoch, a network whose training-mode forward fails on these images or
    returns something other than logits (Inception-v3's auxiliary head, for one, needs about 299 px).

    The probe runs on a copy under a forked RNG, so the trained model's BatchNorm statistics and the
    run's random stream (dropout) are those of a run without it: resumed runs stay reproducible.
    """
    import copy

    import torch

    probe = copy.deepcopy(model).train()
    size = "x".join(str(d) for d in images.shape[1:])
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad():
        try:
            output = probe(images.to(device, dtype=torch.float32))
        except Exception as error:  # the network's own code: what it raised is the reason
            first_line = " ".join(str(error).split())[:200]
            raise EdgekitError(f"the model cannot train on {size} inputs: its training forward raised "
                               f"{type(error).__name__}: {first_line}") from error
    split_training_output(output)
