"""Parameter and FLOP counts with PyTorch's own counter (torch.utils.flop_counter), in one place.

``edgekit models --stats``, the search's candidates and channel pruning's before/after all count
here. Registry models are built and run on the ``meta`` device: no memory is allocated and no
arithmetic is done, so even VGG-19 at 224 is counted in well under a second.
"""

from __future__ import annotations

from edgekit.models._registry import ModelConfig, build_model


def module_stats(model, example) -> dict:
    """{"params", "flops", "macs"} of ``model`` for one forward pass of ``example`` (no autograd).

    The caller picks the batch and the train/eval mode. FlopCounterMode counts a multiply-add as
    2 FLOPs; papers' "FLOPs" are usually multiply-adds, which is the ``macs`` field.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    params = sum(p.numel() for p in model.parameters())
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(example)
    flops = counter.get_total_flops()
    return {"params": params, "flops": flops, "macs": flops // 2}


def model_stats(config: ModelConfig) -> dict:
    """:func:`module_stats` of a fresh build of ``config`` at batch 1 and the config's input size."""
    import torch

    with torch.device("meta"):
        model = build_model(config).eval()
        example = torch.empty(1, config.in_channels, config.input_size, config.input_size)
    return module_stats(model, example)
