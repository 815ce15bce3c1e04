"""Training, the one engine: ``train(TrainConfig) -> TrainResult`` (``edgekit train`` on the command
line, a run folder with checkpoints) and ``fit(model, TrainingData, LoopSettings)`` (in this process,
no files: fine-tuning, the demo, the search, the tests); ``evaluate`` measures both.

Imported lazily so that ``edgekit --help`` does not pay for importing torch.
"""

from edgekit.train.recipes import IN_MEMORY_RECIPE, RECIPES, Recipe, get_recipe

__all__ = ["IN_MEMORY_RECIPE", "RECIPES", "LoopSettings", "Recipe", "TrainConfig", "TrainResult", "evaluate",
           "fit", "get_recipe", "train"]

_LAZY = {"TrainConfig": "loop", "TrainResult": "loop", "train": "loop",
         "LoopSettings": "epochs", "evaluate": "epochs", "fit": "epochs"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"edgekit.train.{_LAZY[name]}"), name)
    raise AttributeError(name)
