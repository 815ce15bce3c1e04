"""Re-estimating BatchNorm statistics on real images.

A randomly initialised network has running_mean=0 / running_var=1 in every BatchNorm, so in eval
mode its activations shrink or explode layer by layer and its logits are nearly constant: parity
and quantization checks on it measure nothing. Re-estimating the statistics on real images
(without touching any weight) gives realistic activation ranges. Used by benchmarks where no
trained weights can be downloaded; it does not make the network accurate.
"""

from __future__ import annotations

import numpy as np


def recalibrate_batchnorm(model, images: np.ndarray, *, batch_size: int = 32):
    import torch
    from torch import nn

    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over all batches, not an EMA
    # Only the BatchNorms train: the rest runs the eval-mode forward that is exported (no dropout or
    # stochastic depth, no auxiliary heads: Inception-v3's fails below 299 px in training mode).
    model.eval()
    for norm in norms:
        norm.train()
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            model(torch.from_numpy(images[start:start + batch_size]))
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    return model.eval()
