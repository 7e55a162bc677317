"""The progress bar over epochs (tqdm), and whether one helps where we run."""

from __future__ import annotations

import sys

from micronet.tasks import LOSS, headlines

__all__ = ["ProgressBar", "interactive"]


def interactive() -> bool:
    """True in a Jupyter kernel or at a terminal: where a progress bar helps."""
    return "ipykernel" in sys.modules or sys.stderr.isatty()


def _has_widgets() -> bool:
    """tqdm's notebook bar needs ipywidgets; without it, a text bar (tqdm.auto would warn)."""
    import importlib.util

    return importlib.util.find_spec("ipywidgets") is not None


class ProgressBar:
    """A tqdm bar over epochs (tqdm.auto: a widget in Jupyter, text at a terminal)."""

    def __init__(self, total: int, initial: int = 0, notebook: bool = True) -> None:
        if notebook and _has_widgets():
            from tqdm.auto import tqdm
        else:
            from tqdm import tqdm  # type: ignore[assignment]  # the plain bar, where tqdm.auto picks a widget
        self.bar = tqdm(total=total, initial=initial, unit="epoch", file=sys.stderr, leave=False, dynamic_ncols=True)

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        shown = {}
        scores = [(f"{split}_", metric) for metric in headlines() for split in ("val", "test")]
        for prefix, metric in [("", LOSS), ("val_", LOSS), *scores]:
            if prefix + metric.name in logs:
                shown[f"{prefix or 'train_'}{metric.short}"] = metric.show(logs[prefix + metric.name])
        self.bar.update(1)
        self.bar.set_postfix(shown)

    def close(self) -> None:
        self.bar.close()
