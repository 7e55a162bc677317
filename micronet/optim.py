"""Optimizers and learning-rate schedules with PyTorch's numbers.

`SGD` and `Adam` update a list of `Value`s in place from their `.grad`, with
the same arithmetic, in the same order, as PyTorch's single-tensor (CPU
default) code path, so a trajectory can be checked against PyTorch in float64
to ~1e-14 rather than "roughly". (Not bit for bit: PyTorch's `a.add(b,
alpha=c)` is a fused multiply-add that rounds once, Python's `a + c*b` rounds
twice.) Their whole state is plain JSON data, so a run that is stopped and
resumed continues exactly as if it had never stopped.

A schedule wraps an optimizer and sets its `lr` from a closed form in the
step count `t`, which makes `lr_at(t)` testable on its own and a resumed
schedule independent of the history that led to it.

`array_twin(optimizer)` gives the same update on flat float64 arrays, for
compiled training (micronet.compile.TrainingSession): each element gets the
scalar code's operations in the scalar code's order, and NumPy's elementwise
+, -, *, / and sqrt round exactly as Python's floats do, so a trajectory is
bit for bit the scalar optimizer's. NumPy is imported only by the twins, so
`import micronet` stays free of third-party packages.
"""

from __future__ import annotations  # the twins' NumPy types are named, not imported, at run time

import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from micronet.engine import Value
from micronet.options import Flag, Integer, Option, OptionError, Real, RealPair

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "ConstantSchedule",
    "StepSchedule",
    "ExponentialSchedule",
    "CosineSchedule",
    "LinearSchedule",
    "InverseScalingSchedule",
    "OPTIMIZERS",
    "SCHEDULES",
    "SGDArrays",
    "AdamArrays",
    "ARRAY_TWINS",
    "ArrayTwin",
    "array_twin",
]


# ----- argument checks ------------------------------------------------------

_POSITIVE = Real(0.0, low_open=True)
_NON_NEGATIVE = Real(0.0)
_FRACTION = Real(0.0, 1.0, high_open=True)
_STEP_COUNT = Integer(0)


def _any_real(name: str, value: object) -> float:
    """A real number (not a bool) as a float: the numbers a state_dict holds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise OptionError(f"{name} must be a real number, got {type(value).__name__}: {value!r}")
    return float(value)


def _check_params(params: Iterable[Value]) -> list[Value]:
    """The parameters as a list, in the given order; each Value exactly once."""
    if isinstance(params, Value) or not hasattr(params, "__iter__"):
        raise TypeError(
            f"params must be an iterable of Values (such as model.parameters()), "
            f"got {type(params).__name__}"
        )
    params = list(params)
    if not params:
        raise ValueError("params must contain at least one Value, got an empty list")
    seen: dict[int, int] = {}
    for i, p in enumerate(params):
        if not isinstance(p, Value):
            raise TypeError(f"params[{i}] must be a Value, got {type(p).__name__}: {p!r}")
        if id(p) in seen:  # it would be updated twice per step
            raise ValueError(f"params[{i}] is the same Value as params[{seen[id(p)]}]")
        seen[id(p)] = i
    return params


def _check_keys(sd: object, expected: Iterable[str]) -> None:
    if not isinstance(sd, dict):
        raise TypeError(f"state_dict must be a dict, got {type(sd).__name__}")
    missing = sorted(set(expected) - set(sd))
    if missing:
        raise ValueError(f"state_dict is missing keys {missing}")
    unknown = sorted(set(sd) - set(expected), key=str)
    if unknown:
        raise ValueError(f"state_dict has unknown keys {unknown}; expected {sorted(expected)}")


def _check_kind(sd: Mapping[str, Any], key: str, kind: str) -> None:
    if sd[key] != kind:
        raise ValueError(f"state_dict[{key!r}] is {sd[key]!r}, but this is a {kind!r} {key}")


def _float_list(name: str, values: object, length: int) -> list[float]:
    """A list of `length` floats (JSON's lists of numbers), checked entry by entry."""
    if not isinstance(values, (list, tuple)):
        raise TypeError(f"{name} must be a list of floats, got {type(values).__name__}")
    if len(values) != length:
        raise ValueError(f"{name} has {len(values)} entries, but the optimizer has {length} parameters")
    return [_any_real(f"{name}[{i}]", v) for i, v in enumerate(values)]


# ----- optimizers -----------------------------------------------------------


def _lr(default: float) -> Option:
    return Option(_POSITIVE, default, "the base learning rate; a schedule scales it")


_WEIGHT_DECAY = Option(_NON_NEGATIVE, 0.0, "an L2 penalty folded into the gradient, as in PyTorch")


class Optimizer(ABC):
    """What SGD and Adam share: the parameter list, checked options, `lr`, and `zero_grad`.

    Each optimizer declares its options once, in `options` (rule, default,
    help): its signature's defaults, the config's keys, `micronet.fit`'s
    keywords and the estimators' parameters all read them.
    """

    name = ""
    options: ClassVar[Mapping[str, Option]] = {}

    def __init__(self, params: Iterable[Value], **options: Any) -> None:
        self.params = _check_params(params)
        for key, value in self.check_options(options, str).items():
            setattr(self, key, value)
        self.step_count = 0  # number of step() calls so far

    @classmethod
    def check_options(cls, given: Mapping[str, Any], named: Callable[[str], str]) -> dict[str, Any]:
        """Every option checked (`named(key)` is how the caller wrote it), with the rules between them."""
        values = {key: cls.options[key].check(value, named(key)) for key, value in given.items()}
        cls.check_together(values, named)
        return values

    @classmethod
    def check_together(cls, values: Mapping[str, Any], named: Callable[[str], str]) -> None:
        """Rules that involve two options (SGD's nesterov needs momentum); none by default."""
        return None

    @property
    def lr(self) -> float:
        """The learning rate of the next step; a schedule or the user may set it."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        # >= 0 rather than > 0: a schedule may anneal all the way to zero.
        self._lr = _NON_NEGATIVE(value, "lr")

    def zero_grad(self) -> None:
        """Reset every parameter's gradient: backward() accumulates into leaves."""
        for p in self.params:
            p.grad = 0.0

    # What each optimizer defines (see SGD and Adam).
    @abstractmethod
    def step(self) -> None:
        """Update every parameter from its current `.grad`."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs, as plain JSON-serialisable data."""

    @abstractmethod
    def load_state_dict(self, sd: dict[str, Any]) -> None:
        """Restore `state_dict()` output; on any error the optimizer is unchanged."""

    def _hyper_repr(self) -> str:
        return f"lr={self.lr!r}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self.params)} params, {self._hyper_repr()})"


class SGD(Optimizer):
    """Stochastic gradient descent with PyTorch's momentum and Nesterov rule.

    For each parameter p with gradient grad, in this order:

        g   = grad + weight_decay * p            (L2 penalty folded into the gradient)
        buf = g                                  on the first step,
        buf = momentum * buf + g                 afterwards (dampening 0)
        d   = g + momentum * buf  if nesterov,  buf  if momentum > 0,  g  otherwise
        p   = p - lr * d

    The buffer starts as the first g (not zero), as in PyTorch, so the very
    first step is a plain gradient step and early steps are not too small.
    """

    name = "sgd"
    options = {
        "lr": _lr(0.1),
        "momentum": Option(_FRACTION, 0.9, "the momentum factor (0: plain SGD)"),
        "nesterov": Option(Flag(), False, "Nesterov momentum; needs momentum > 0"),
        "weight_decay": _WEIGHT_DECAY,
    }
    momentum: float
    nesterov: bool
    weight_decay: float

    def __init__(self, params: Iterable[Value], lr: float = options["lr"].default,
                 momentum: float = options["momentum"].default, nesterov: bool = options["nesterov"].default,
                 weight_decay: float = options["weight_decay"].default) -> None:
        super().__init__(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
        self.momentum_buffer: list[float] | None = None  # one float per parameter after the first step

    @classmethod
    def check_together(cls, values: Mapping[str, Any], named: Callable[[str], str]) -> None:
        """Nesterov momentum needs momentum."""
        if values.get("nesterov") and values.get("momentum") == 0.0:
            raise OptionError(f"{named('nesterov')} needs {named('momentum')} > 0, got {values['momentum']!r}")

    def step(self) -> None:
        """Update every parameter from its current `.grad`."""
        lr, momentum, wd = self.lr, self.momentum, self.weight_decay
        first = self.momentum_buffer is None
        if momentum != 0.0 and first:
            self.momentum_buffer = [0.0] * len(self.params)
        buf = self.momentum_buffer or []  # [] without momentum: never indexed
        for i, p in enumerate(self.params):
            g = p.grad
            if wd != 0.0:
                g = g + wd * p.data
            if momentum != 0.0:
                buf[i] = g if first else buf[i] * momentum + g
                g = g + momentum * buf[i] if self.nesterov else buf[i]
            p.data = p.data - lr * g
        self.step_count += 1

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs, as plain JSON-serialisable data."""
        buf = self.momentum_buffer
        return {
            "optimizer": self.name,
            "lr": self.lr,
            "momentum": self.momentum,
            "nesterov": self.nesterov,
            "weight_decay": self.weight_decay,
            "step": self.step_count,
            "momentum_buffer": None if buf is None else list(buf),
        }

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        """Restore `state_dict()` output; on any error the optimizer is unchanged."""
        _check_keys(sd, self.state_dict())
        _check_kind(sd, "optimizer", self.name)
        lr = _NON_NEGATIVE(sd["lr"], "state_dict['lr']")
        own = {key: sd[key] for key in ("momentum", "nesterov", "weight_decay")}
        checked = self.check_options(own, lambda key: f"state_dict[{key!r}]")
        momentum, nesterov, weight_decay = checked["momentum"], checked["nesterov"], checked["weight_decay"]
        step = _STEP_COUNT(sd["step"], "state_dict['step']")
        buf = sd["momentum_buffer"]
        if buf is not None:
            if momentum == 0.0:
                raise ValueError("state_dict has a momentum_buffer but momentum=0.0")
            buf = _float_list("state_dict['momentum_buffer']", buf, len(self.params))
        self.lr, self.momentum, self.nesterov = lr, momentum, nesterov
        self.weight_decay, self.step_count, self.momentum_buffer = weight_decay, step, buf

    def _hyper_repr(self) -> str:
        return (
            f"lr={self.lr!r}, momentum={self.momentum!r}, "
            f"nesterov={self.nesterov!r}, weight_decay={self.weight_decay!r}"
        )


class Adam(Optimizer):
    """Adam (Kingma & Ba) with PyTorch's bias correction and L2 weight decay.

    With t the step number (1 on the first step) and m, v starting at 0:

        g = grad + weight_decay * p              (L2 in the gradient; this is not AdamW)
        m = m + (1 - beta1) * (g - m)            (= beta1*m + (1-beta1)*g, as torch.lerp)
        v = beta2 * v + (1 - beta2) * g * g
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    eps is added after the bias correction of sqrt(v), exactly where PyTorch
    adds it; it matters while v is tiny.
    """

    name = "adam"
    options = {
        "lr": _lr(0.01),
        "betas": Option(RealPair(_FRACTION, "(beta1, beta2)"), (0.9, 0.999),
                        "decay rates of the running means of the gradient and its square"),
        "eps": Option(_POSITIVE, 1e-8, "added to the denominator, for stability"),
        "weight_decay": _WEIGHT_DECAY,
    }
    betas: tuple[float, float]
    eps: float
    weight_decay: float

    def __init__(self, params: Iterable[Value], lr: float = options["lr"].default,
                 betas: tuple[float, float] = options["betas"].default, eps: float = options["eps"].default,
                 weight_decay: float = options["weight_decay"].default) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        self.exp_avg = [0.0] * len(self.params)  # m: running mean of g
        self.exp_avg_sq = [0.0] * len(self.params)  # v: running mean of g*g

    def step(self) -> None:
        """Update every parameter from its current `.grad`."""
        beta1, beta2 = self.betas
        eps, wd = self.eps, self.weight_decay
        self.step_count += 1
        t = self.step_count
        step_size = self.lr / (1.0 - beta1**t)
        bias_correction2_sqrt = (1.0 - beta2**t) ** 0.5
        m, v = self.exp_avg, self.exp_avg_sq
        for i, p in enumerate(self.params):
            g = p.grad
            if wd != 0.0:
                g = g + wd * p.data
            m[i] = _lerp(m[i], g, 1.0 - beta1)
            v[i] = v[i] * beta2 + (1.0 - beta2) * g * g
            denom = math.sqrt(v[i]) / bias_correction2_sqrt + eps
            p.data = p.data - step_size * m[i] / denom

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs, as plain JSON-serialisable data."""
        return {
            "optimizer": self.name,
            "lr": self.lr,
            "betas": list(self.betas),
            "eps": self.eps,
            "weight_decay": self.weight_decay,
            "step": self.step_count,
            "exp_avg": list(self.exp_avg),
            "exp_avg_sq": list(self.exp_avg_sq),
        }

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        """Restore `state_dict()` output; on any error the optimizer is unchanged."""
        _check_keys(sd, self.state_dict())
        _check_kind(sd, "optimizer", self.name)
        lr = _NON_NEGATIVE(sd["lr"], "state_dict['lr']")
        own = {key: sd[key] for key in ("betas", "eps", "weight_decay")}
        checked = self.check_options(own, lambda key: f"state_dict[{key!r}]")
        betas, eps, weight_decay = checked["betas"], checked["eps"], checked["weight_decay"]
        step = _STEP_COUNT(sd["step"], "state_dict['step']")
        n = len(self.params)
        exp_avg = _float_list("state_dict['exp_avg']", sd["exp_avg"], n)
        exp_avg_sq = _float_list("state_dict['exp_avg_sq']", sd["exp_avg_sq"], n)
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.step_count, self.exp_avg, self.exp_avg_sq = step, exp_avg, exp_avg_sq

    def _hyper_repr(self) -> str:
        return f"lr={self.lr!r}, betas={self.betas!r}, eps={self.eps!r}, weight_decay={self.weight_decay!r}"


def _lerp(start: float, end: float, weight: float) -> float:
    """start + weight * (end - start), rounded the way torch.lerp rounds it.

    torch switches formula at weight 0.5 so the result is exact at weight 1;
    following it keeps Adam bit-for-bit close to PyTorch for every beta1.
    """
    if abs(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1.0 - weight)


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam}


# ----- array twins -----------------------------------------------------------
# The optimizer's state lives in arrays while a twin runs; `store` writes it
# into the scalar optimizer (so its state_dict is current), `load` reads it
# back. Hyperparameters, lr included, are read from the scalar optimizer at
# every step, so a schedule or load_state_dict takes effect at once.


class SGDArrays:
    """SGD.step on flat arrays: the same expressions, element by element, in the same order."""

    def __init__(self, optimizer: SGD) -> None:
        self.optimizer = optimizer
        self.load()

    def load(self) -> None:
        import numpy as np

        buf = self.optimizer.momentum_buffer
        self.momentum_buffer: NDArray[np.float64] | None = None if buf is None else np.array(buf, dtype=float)
        self.step_count = self.optimizer.step_count

    def store(self) -> None:
        buf = self.momentum_buffer
        self.optimizer.momentum_buffer = None if buf is None else buf.tolist()
        self.optimizer.step_count = self.step_count

    def step(self, p: NDArray[np.float64], grad: NDArray[np.float64]) -> None:
        """Update the float64 array p in place from the array grad (left unchanged)."""
        opt = self.optimizer
        lr, momentum, wd = opt.lr, opt.momentum, opt.weight_decay
        g = grad if wd == 0.0 else grad + wd * p
        if momentum != 0.0:
            buf = self.momentum_buffer
            if buf is None:
                buf = self.momentum_buffer = g.copy()
            else:
                buf *= momentum  # buf * momentum + g
                buf += g
            g = g + momentum * buf if opt.nesterov else buf
        p -= lr * g
        self.step_count += 1


class AdamArrays:
    """Adam.step on flat arrays: the same expressions, element by element, in the same order."""

    def __init__(self, optimizer: Adam) -> None:
        self.optimizer = optimizer
        self.load()

    def load(self) -> None:
        import numpy as np

        self.exp_avg: NDArray[np.float64] = np.array(self.optimizer.exp_avg, dtype=float)
        self.exp_avg_sq: NDArray[np.float64] = np.array(self.optimizer.exp_avg_sq, dtype=float)
        self.step_count = self.optimizer.step_count

    def store(self) -> None:
        self.optimizer.exp_avg = self.exp_avg.tolist()
        self.optimizer.exp_avg_sq = self.exp_avg_sq.tolist()
        self.optimizer.step_count = self.step_count

    def step(self, p: NDArray[np.float64], grad: NDArray[np.float64]) -> None:
        """Update the float64 array p in place from the array grad (left unchanged)."""
        import numpy as np

        opt = self.optimizer
        beta1, beta2 = opt.betas
        eps, wd = opt.eps, opt.weight_decay
        self.step_count += 1
        t = self.step_count
        step_size = opt.lr / (1.0 - beta1**t)
        bias_correction2_sqrt = (1.0 - beta2**t) ** 0.5
        m, v = self.exp_avg, self.exp_avg_sq
        g = grad if wd == 0.0 else grad + wd * p
        weight = 1.0 - beta1
        if abs(weight) < 0.5:  # _lerp(m, g, weight), both of its branches
            m += weight * (g - m)
        else:
            np.subtract(g, (g - m) * (1.0 - weight), out=m)
        v *= beta2  # v * beta2 + (1 - beta2) * g * g
        v += (1.0 - beta2) * g * g
        denom = np.sqrt(v) / bias_correction2_sqrt + eps
        p -= step_size * m / denom


class ArrayTwin(Protocol):
    """What compiled training calls on an optimizer's twin (SGDArrays and AdamArrays are two)."""

    def load(self) -> None:
        """Read the scalar optimizer's state into arrays."""

    def store(self) -> None:
        """Write the arrays' state back into the scalar optimizer."""

    def step(self, p: NDArray[np.float64], grad: NDArray[np.float64]) -> None:
        """Update the flat parameters p in place from grad."""


# optimizer class -> its twin on arrays
ARRAY_TWINS: dict[type[Optimizer], Callable[[Any], ArrayTwin]] = {SGD: SGDArrays, Adam: AdamArrays}


def array_twin(optimizer: Optimizer) -> ArrayTwin:
    """The optimizer's twin on arrays, or TypeError for a class without one (a subclass
    too: it may step differently)."""
    twin = ARRAY_TWINS.get(type(optimizer))
    if twin is None:
        supported = " and ".join(cls.__name__ for cls in ARRAY_TWINS)
        raise TypeError(
            f"no array twin for {type(optimizer).__name__}: compiled training supports {supported}; "
            "train on Values instead"
        )
    return twin(optimizer)


# ----- learning-rate schedules ----------------------------------------------


class _Schedule(ABC):
    """Sets `optimizer.lr = lr_at(t)`, t = 0 on construction, +1 per `step()`.

    `base_lr` is the optimizer's lr when the schedule is made (as PyTorch's
    `base_lrs`). Call `step()` once per optimizer step or once per epoch,
    whichever unit the schedule's parameters are in. Each schedule declares
    its parameters once, in `options`, as an optimizer does; a parameter
    whose `run_length` is set may be left unset (None) by the config and
    `micronet.fit`, which fill in the run's length, but a schedule object
    needs a number.
    """

    name = ""
    options: ClassVar[Mapping[str, Option]] = {}

    def __init__(self, optimizer: Optimizer, **params: Any) -> None:
        if not isinstance(getattr(optimizer, "lr", None), float):
            raise TypeError(
                f"a schedule needs an optimizer with a float lr, got {type(optimizer).__name__}"
            )
        for key, value in params.items():
            setattr(self, key, self.options[key].rule(value, key))  # the rule: None is no number here
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.t = 0
        optimizer.lr = self.lr_at(0)

    def lr_at(self, t: int) -> float:
        """The learning rate after `t` calls of `step()`, in closed form."""
        t = _STEP_COUNT(t, "t")
        return self._lr_at(t)

    @abstractmethod
    def _lr_at(self, t: int) -> float:
        """Each schedule's closed form."""

    def step(self) -> None:
        """Advance one step (or epoch) and set the optimizer's lr."""
        self.t += 1
        self.optimizer.lr = self.lr_at(self.t)

    def params(self) -> dict[str, Any]:
        """The schedule's own parameters, by keyword name."""
        return {name: getattr(self, name) for name in self.options}

    def state_dict(self) -> dict[str, Any]:
        """t and base_lr (plus the schedule's name and parameters, for checking)."""
        return {"schedule": self.name, "t": self.t, "base_lr": self.base_lr, "params": self.params()}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        """Restore t and base_lr and set the optimizer's lr to `lr_at(t)`.

        The saved parameters must equal this schedule's: resuming with a
        different schedule is a configuration mistake, not a resume.
        """
        _check_keys(sd, self.state_dict())
        _check_kind(sd, "schedule", self.name)
        t = _STEP_COUNT(sd["t"], "state_dict['t']")
        base_lr = _POSITIVE(sd["base_lr"], "state_dict['base_lr']")
        if sd["params"] != self.params():
            raise ValueError(
                f"state_dict['params'] is {sd['params']!r}, but this schedule has {self.params()!r}"
            )
        self.t, self.base_lr = t, base_lr
        self.optimizer.lr = self.lr_at(t)

    def __repr__(self) -> str:
        params = "".join(f", {k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}(t={self.t}, base_lr={self.base_lr!r}{params})"


_GAMMA = _POSITIVE  # a decay factor


class ConstantSchedule(_Schedule):
    """lr(t) = base_lr: the default, so every run has a schedule object."""

    name = "constant"

    def __init__(self, optimizer: Optimizer) -> None:
        super().__init__(optimizer)

    def _lr_at(self, t: int) -> float:
        return self.base_lr


class StepSchedule(_Schedule):
    """lr(t) = base_lr * gamma ** floor(t / step_size)  (PyTorch's StepLR)."""

    name = "step"
    options = {
        "step_size": Option(Integer(1), help="decay every step_size intervals", required=True),
        "gamma": Option(_GAMMA, 0.1, "the decay factor"),
    }
    step_size: int
    gamma: float

    def __init__(self, optimizer: Optimizer, *, step_size: int, gamma: float = options["gamma"].default) -> None:
        super().__init__(optimizer, step_size=step_size, gamma=gamma)

    def _lr_at(self, t: int) -> float:
        return self.base_lr * self.gamma ** (t // self.step_size)


class ExponentialSchedule(_Schedule):
    """lr(t) = base_lr * gamma ** t  (PyTorch's ExponentialLR)."""

    name = "exponential"
    options = {"gamma": Option(_GAMMA, 0.95, "the decay factor per interval")}
    gamma: float

    def __init__(self, optimizer: Optimizer, *, gamma: float = options["gamma"].default) -> None:
        super().__init__(optimizer, gamma=gamma)

    def _lr_at(self, t: int) -> float:
        return self.base_lr * self.gamma**t


def _run_length(help: str) -> Option:
    return Option(Integer(1), None, help, unset="the whole run", run_length=True)


class CosineSchedule(_Schedule):
    """lr(t) = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2.

    PyTorch's CosineAnnealingLR in closed form: it reaches eta_min at
    t = T_max and, as in PyTorch, rises again after that (no restarts), so
    choose T_max = the number of steps to anneal exactly once.
    """

    name = "cosine"
    options = {
        "T_max": _run_length("intervals to anneal over"),
        "eta_min": Option(_NON_NEGATIVE, 0.0, "the final learning rate"),
    }
    T_max: int
    eta_min: float

    def __init__(self, optimizer: Optimizer, *, T_max: int, eta_min: float = options["eta_min"].default) -> None:
        super().__init__(optimizer, T_max=T_max, eta_min=eta_min)

    def _lr_at(self, t: int) -> float:
        cosine = 1.0 + math.cos(math.pi * t / self.T_max)
        return self.eta_min + (self.base_lr - self.eta_min) * cosine / 2.0


class LinearSchedule(_Schedule):
    """lr(t) = base_lr * (start_factor + (end_factor - start_factor) * min(t, total_iters) / total_iters).

    PyTorch's LinearLR. The default factors give micrograd's demo decay: with
    base_lr 1.0 and total_iters 100, lr(k) = 1.0 - 0.9 * k / 100 for k = 0..100.
    """

    name = "linear"
    options = {
        "start_factor": Option(Real(0.0, 1.0, low_open=True), 1.0, "the first lr over the base lr"),
        "end_factor": Option(Real(0.0, 1.0), 0.1, "the last lr over the base lr"),
        "total_iters": _run_length("intervals to reach end_factor"),
    }
    start_factor: float
    end_factor: float
    total_iters: int

    def __init__(self, optimizer: Optimizer, *, start_factor: float = options["start_factor"].default,
                 end_factor: float = options["end_factor"].default, total_iters: int) -> None:
        super().__init__(optimizer, start_factor=start_factor, end_factor=end_factor, total_iters=total_iters)

    def _lr_at(self, t: int) -> float:
        slope = self.end_factor - self.start_factor
        return self.base_lr * (self.start_factor + slope * min(t, self.total_iters) / self.total_iters)


class InverseScalingSchedule(_Schedule):
    """lr(t) = base_lr / (t + 1) ** power_t  (scikit-learn's MLP 'invscaling').

    scikit-learn counts t in samples seen; here t counts `step()` calls.
    """

    name = "invscaling"
    options = {"power_t": Option(_NON_NEGATIVE, 0.5, "the exponent of the decay")}
    power_t: float

    def __init__(self, optimizer: Optimizer, *, power_t: float = options["power_t"].default) -> None:
        super().__init__(optimizer, power_t=power_t)

    def _lr_at(self, t: int) -> float:
        decay: float = (t + 1) ** self.power_t  # typeshed calls a float power Any (it may be complex)
        return self.base_lr / decay


SCHEDULES: dict[str, type[_Schedule]] = {
    "constant": ConstantSchedule,
    "step": StepSchedule,
    "exponential": ExponentialSchedule,
    "cosine": CosineSchedule,
    "linear": LinearSchedule,
    "invscaling": InverseScalingSchedule,
}
