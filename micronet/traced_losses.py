"""Losses without a vectorised kernel as batch losses: traced once per target and merged, or run row by row."""

from collections.abc import Callable
from typing import Any

import numpy as np

from micronet.engine import Value
from micronet.tracing import Program, merge_programs

__all__ = ["MAX_TRACED_TARGETS", "TracedLoss"]

MAX_TRACED_TARGETS = 32  # beyond this many distinct targets, a custom loss runs row by row on Values

_NO_PARAMETERS = np.zeros(0)  # a loss program's parameters and their gradient: it has none


class TracedLoss:
    """A loss without a vectorised kernel, as a batch loss (see batch_losses).

    Traced once per distinct target and merged into one program where the
    traces differ only in a picked logit or a constant (a classification
    loss over a few classes), or else built on Values row by row (many
    distinct targets, or several target columns): any loss works.
    """

    def __init__(self, loss: Callable[..., Value], n_outputs: int) -> None:
        self.loss = loss
        self.n_outputs = n_outputs
        self.programs: dict[Any, Program] = {}  # target -> traced loss program
        self.merged: tuple[Any, Any] | None = None  # (one program for every known target, their values)

    def __call__(self, logits: np.ndarray, y: np.ndarray, seed: float | None) -> tuple[np.ndarray, Any]:
        """(per-row losses, seed * d(loss)/d(logits), or None without a seed), as a batch_losses kernel."""
        if np.ndim(y) != 1 or len(y) == 0:
            return self._row_by_row(logits, y, seed)
        choice = self._known_choice(y)
        if choice is None:  # a target not traced yet
            targets = np.unique(y).tolist()
            if len(set(targets) | set(self.programs)) > MAX_TRACED_TARGETS:
                return self._row_by_row(logits, y, seed)
            for t in targets:
                self._program(t)
            known = sorted(self.programs)
            self.merged = (merge_programs([self.programs[t] for t in known]), np.array(known))
            choice = self._known_choice(y)
        merged, known = self.merged  # type: ignore[misc]  # set just above when it was None
        if merged is not None:  # the usual case: one program for the whole batch
            env = merged.forward(logits, _NO_PARAMETERS, choice)
            losses = merged.outputs_of(env, _NO_PARAMETERS)[:, 0]
            if seed is None:
                return losses, None
            d_seed = np.empty((len(losses), 1))
            d_seed.fill(seed)
            return losses, merged.backward(env, d_seed, _NO_PARAMETERS, _NO_PARAMETERS, input_grad=True)
        losses = np.empty(len(logits))  # shapes differ between targets: one program per target
        d_logits: Any = None if seed is None else np.empty_like(logits)
        for t in np.unique(y).tolist():
            rows = np.flatnonzero(y == t)
            program = self.programs[t]
            env = program.forward(logits[rows], _NO_PARAMETERS)
            losses[rows] = program.outputs_of(env, _NO_PARAMETERS)[:, 0]
            if seed is not None:
                d_seed = np.full((len(rows), 1), seed)
                d_logits[rows] = program.backward(env, d_seed, _NO_PARAMETERS, _NO_PARAMETERS, input_grad=True)
        return losses, d_logits

    def _known_choice(self, y):
        """Each row's index among the traced targets, or None if some target is new."""
        if self.merged is None:
            return None
        known = self.merged[1]
        choice = known.searchsorted(y)
        return choice if (known.take(choice, mode="clip") == y).all() else None

    def _program(self, target):
        """The loss for one target value, traced with the logits as its inputs."""
        if target not in self.programs:
            rows = np.random.default_rng(1).standard_normal((3, self.n_outputs)).tolist()
            self.programs[target] = Program(lambda logits: [self.loss(logits, target)], self.n_outputs, [], rows)
        return self.programs[target]

    def _row_by_row(self, logits, y, seed):
        """The loss on Values for each row: any loss and any targets, at eager speed."""
        losses = np.empty(len(logits))
        d_logits: Any = None if seed is None else np.empty_like(logits)
        for i, (row, target) in enumerate(zip(logits.tolist(), np.asarray(y).tolist())):
            values = [Value(x) for x in row]
            loss = self.loss(values, target)
            losses[i] = loss.data
            if seed is not None:
                (loss * seed).backward()  # the loss node gets seed, as in eager's mean
                d_logits[i] = [v.grad for v in values]
        return losses, d_logits
