"""The training loop's public names in one import, for the CLI, sweeps, estimators, playground and notebooks.

The loop is split by concept: `executors` (a batch to a loss and
gradients), `callbacks` (EarlyStopping, History, the callback protocol),
`state` (Plan, TrainState and their factories), `epochs` (`run_epochs`
and scoring), `progress` (the progress bar) and `fitting` (`micronet.fit`).
This module gathers their public names, so `from micronet.loop import ...`
keeps working; code inside micronet imports from the modules themselves.
"""

from micronet.callbacks import EarlyStopping, History
from micronet.epochs import Diverged, run_epochs, score
from micronet.executors import EagerExecutor, make_executor
from micronet.fitting import fit
from micronet.progress import ProgressBar, interactive
from micronet.state import Plan, TrainState, config_loss, new_state, sub_rng

__all__ = [
    "Diverged",
    "EagerExecutor",
    "EarlyStopping",
    "History",
    "Plan",
    "ProgressBar",
    "TrainState",
    "config_loss",
    "fit",
    "interactive",
    "make_executor",
    "new_state",
    "run_epochs",
    "score",
    "sub_rng",
]
