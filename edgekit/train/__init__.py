"""The training stage: ``train(TrainConfig) -> TrainResult`` (``edgekit train`` on the command line).

Imported lazily so that ``edgekit --help`` does not pay for importing torch.
"""

from edgekit.train.recipes import RECIPES, Recipe, get_recipe

__all__ = ["RECIPES", "Recipe", "TrainConfig", "TrainResult", "get_recipe", "train"]


def __getattr__(name: str):
    if name in ("TrainConfig", "TrainResult", "train"):
        from edgekit.train import loop

        return getattr(loop, name)
    raise AttributeError(name)
