"""Optimizers and schedules against PyTorch's numbers, worked examples and resumes.

The golden trajectories come from experiments/make_optim_goldens.py (PyTorch
2.13, float64); here micronet replays them with its own autograd computing
the gradient, and every step must agree to 1e-10 relative.
"""

import json
import math
import random
import re
from pathlib import Path

import pytest

from micronet.engine import Value
from micronet.optim import (
    OPTIMIZERS,
    SCHEDULES,
    SGD,
    Adam,
    ConstantSchedule,
    CosineSchedule,
    ExponentialSchedule,
    InverseScalingSchedule,
    LinearSchedule,
    StepSchedule,
)

GOLDENS = json.loads((Path(__file__).parent / "data" / "optim_goldens.json").read_text())
REL = 1e-10


def rosenbrock(x, y):
    return (1 - x) ** 2 + 10 * (y - x**2) ** 2


def close(a, b, rel=REL):
    return math.isclose(a, b, rel_tol=rel, abs_tol=0.0)


def case_id(case):
    kwargs = ",".join(f"{k}={v}" for k, v in case["kwargs"].items())
    return f"{case.get('optimizer') or case.get('schedule')}({kwargs})"


def make_optimizer(name, params, kwargs):
    kwargs = dict(kwargs)
    if "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])
    return OPTIMIZERS[name](params, **kwargs)


def descend(optimizer, x, y, steps):
    """`steps` optimizer steps on the Rosenbrock function; the losses seen."""
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = rosenbrock(x, y)
        loss.backward()
        losses.append(loss.data)
        optimizer.step()
    return losses


# ----- against PyTorch --------------------------------------------------------


def test_goldens_come_from_the_pinned_pytorch_and_cover_every_option():
    header = GOLDENS["header"]
    assert header["torch"].split("+")[0] == "2.13.0"
    assert header["dtype"] == "float64"
    sgd = {tuple(c["kwargs"].values()) for c in GOLDENS["optimizers"] if c["optimizer"] == "sgd"}
    for lr in (1e-3, 5e-3):
        for momentum, nesterov in ((0.0, False), (0.9, False), (0.9, True)):
            for wd in (0.0, 0.01):
                assert (lr, momentum, nesterov, wd) in sgd
    adam = [c["kwargs"] for c in GOLDENS["optimizers"] if c["optimizer"] == "adam"]
    assert {(a["weight_decay"], tuple(a["betas"])) for a in adam} == {
        (wd, betas) for wd in (0.0, 0.01) for betas in ((0.9, 0.999), (0.5, 0.9))
    }
    assert {c["schedule"] for c in GOLDENS["schedules"]} == set(SCHEDULES)


@pytest.mark.parametrize("case", GOLDENS["optimizers"], ids=case_id)
def test_trajectory_matches_pytorch(case):
    x, y = (Value(v) for v in GOLDENS["header"]["start"])
    optimizer = make_optimizer(case["optimizer"], [x, y], case["kwargs"])
    for k in range(GOLDENS["header"]["steps"]):
        optimizer.zero_grad()
        loss = rosenbrock(x, y)
        loss.backward()
        assert close(loss.data, case["loss"][k]), (k, loss.data, case["loss"][k])
        optimizer.step()
        want_x, want_y = case["params"][k + 1]
        assert close(x.data, want_x) and close(y.data, want_y), (k + 1, [x.data, y.data], case["params"][k + 1])
    assert optimizer.step_count == 25


@pytest.mark.parametrize("case", GOLDENS["schedules"], ids=case_id)
def test_schedule_matches_pytorch(case):
    optimizer = SGD([Value(0.0)], lr=case["base_lr"])
    schedule = SCHEDULES[case["schedule"]](optimizer, **case["kwargs"])
    assert schedule.base_lr == case["base_lr"]
    for t, want in enumerate(case["lr"]):
        if t > 0:
            schedule.step()
        assert schedule.t == t
        assert optimizer.lr == schedule.lr_at(t)
        # eta_min = 0 makes the cosine exactly 0 at T_max; PyTorch's recursion gives 0 too
        assert close(optimizer.lr, want) or optimizer.lr == want == 0.0, (t, optimizer.lr, want)


# ----- worked examples -----------------------------------------------------------


def constant_gradient_steps(optimizer, p, grad, steps):
    values = []
    for _ in range(steps):
        p.grad = grad
        optimizer.step()
        values.append(p.data)
    return values


def test_sgd_momentum_buffer_starts_as_the_first_gradient():
    p = Value(1.0)
    # buf: 2, then 0.9*2 + 2 = 3.8; p: 1 - 0.1*2 = 0.8, then 0.8 - 0.1*3.8 = 0.42
    got = constant_gradient_steps(SGD([p], lr=0.1, momentum=0.9), p, 2.0, 2)
    assert got == pytest.approx([0.8, 0.42], rel=1e-15)


def test_sgd_nesterov_looks_ahead_by_momentum_times_buffer():
    p = Value(1.0)
    # step 1: buf = 2, d = 2 + 0.9*2 = 3.8, p = 1 - 0.38 = 0.62
    # step 2: buf = 3.8, d = 2 + 0.9*3.8 = 5.42, p = 0.62 - 0.542 = 0.078
    got = constant_gradient_steps(SGD([p], lr=0.1, momentum=0.9, nesterov=True), p, 2.0, 2)
    assert got == pytest.approx([0.62, 0.078], rel=1e-14)


def test_sgd_weight_decay_is_added_to_the_gradient():
    p = Value(2.0)
    # g = 1 + 0.5*2 = 2, p = 2 - 0.1*2 = 1.8
    assert constant_gradient_steps(SGD([p], lr=0.1, weight_decay=0.5), p, 1.0, 1) == [1.8]


def test_adam_first_step_moves_by_lr_times_sign():
    # bias correction makes m_hat = g and sqrt(v_hat) = |g| on step 1
    p, q = Value(1.0), Value(1.0)
    optimizer = Adam([p, q], lr=0.01)
    p.grad, q.grad = 3.0, -1e-3
    optimizer.step()
    assert p.data == pytest.approx(1.0 - 0.01 * 3.0 / (3.0 + 1e-8), rel=1e-15)
    assert q.data == pytest.approx(1.0 + 0.01 * 1e-3 / (1e-3 + 1e-8), rel=1e-15)
    assert optimizer.exp_avg == pytest.approx([0.3, -1e-4], rel=1e-15)
    assert optimizer.exp_avg_sq == pytest.approx([0.009, 1e-9], rel=1e-12)


def test_adam_weight_decay_is_l2_in_the_gradient_not_decoupled():
    # g = 0 + 0.1 * 2 = 0.2, so the first step is lr * 0.2 / (0.2 + eps), not lr*wd*p
    p = Value(2.0)
    optimizer = Adam([p], lr=0.5, weight_decay=0.1)
    p.grad = 0.0
    optimizer.step()
    assert p.data == pytest.approx(2.0 - 0.5 * 0.2 / (0.2 + 1e-8), rel=1e-15)


def test_zero_grad_sets_every_grad_to_zero():
    params = [Value(1.0), Value(-2.0), Value(3.0)]
    out = params[0] * params[1] + params[2] * params[2]
    out.backward()
    assert [p.grad for p in params] == [-2.0, 1.0, 6.0]
    for optimizer in (SGD(params, lr=0.1), Adam(params)):
        out.backward()
        optimizer.zero_grad()
        assert [p.grad for p in params] == [0.0, 0.0, 0.0]
        assert all(type(p.grad) is float for p in params)


def test_params_are_stored_as_a_list_in_the_given_order():
    params = [Value(float(i)) for i in range(4)]
    optimizer = Adam(p for p in params)  # any iterable, also a generator
    assert isinstance(optimizer.params, list)
    assert all(a is b for a, b in zip(optimizer.params, params, strict=True))


def test_a_step_with_zero_gradient_and_no_momentum_changes_nothing():
    p = Value(0.5)
    SGD([p], lr=0.1).step()
    assert p.data == 0.5


# ----- schedules ------------------------------------------------------------------


def test_schedule_drives_the_optimizer_lr():
    p = Value(0.0)
    optimizer = SGD([p], lr=1.0, momentum=0.0)
    schedule = StepSchedule(optimizer, step_size=2, gamma=0.5)
    moves = []
    for _ in range(6):
        before = p.data
        p.grad = 1.0  # each step moves p by exactly -lr
        optimizer.step()
        moves.append(before - p.data)
        schedule.step()
    assert moves == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    assert optimizer.lr == 0.125


def test_constructing_a_schedule_records_base_lr_and_sets_lr_at_zero():
    optimizer = Adam([Value(1.0)], lr=0.2)
    schedule = LinearSchedule(optimizer, start_factor=0.5, end_factor=1.0, total_iters=4)
    assert schedule.base_lr == 0.2 and schedule.t == 0
    assert optimizer.lr == 0.1
    schedule.step()
    assert optimizer.lr == pytest.approx(0.125, rel=1e-15)


def test_linear_defaults_are_micrograds_demo_decay():
    # micrograd's demo: learning_rate = 1.0 - 0.9*k/100 for k in range(100)
    optimizer = SGD([Value(0.0)], lr=1.0)
    schedule = LinearSchedule(optimizer, total_iters=100)
    for k in range(100):
        assert optimizer.lr == 1.0 - 0.9 * k / 100, k
        schedule.step()
    assert optimizer.lr == pytest.approx(0.1, rel=1e-15)
    schedule.step()
    assert optimizer.lr == schedule.lr_at(100)  # stays at end_factor


def test_schedule_closed_forms_by_hand():
    def lrs(cls, **params):
        schedule = cls(SGD([Value(0.0)], lr=0.8), **params)
        return [schedule.lr_at(t) for t in range(5)]

    assert lrs(ConstantSchedule) == [0.8] * 5
    assert lrs(StepSchedule, step_size=2, gamma=0.5) == [0.8, 0.8, 0.4, 0.4, 0.2]
    assert lrs(ExponentialSchedule, gamma=0.5) == [0.8, 0.4, 0.2, 0.1, 0.05]
    assert lrs(CosineSchedule, T_max=2) == pytest.approx([0.8, 0.4, 0.0, 0.4, 0.8], abs=1e-15)
    assert lrs(InverseScalingSchedule, power_t=1.0) == pytest.approx([0.8, 0.4, 0.8 / 3, 0.2, 0.16], rel=1e-15)


def test_schedule_state_dict_resumes_the_same_lr_sequence():
    def make():
        optimizer = SGD([Value(0.0)], lr=0.3)
        return optimizer, CosineSchedule(optimizer, T_max=20, eta_min=0.01)

    optimizer, schedule = make()
    for _ in range(7):
        schedule.step()
    saved = json.loads(json.dumps(schedule.state_dict()))
    assert saved == {"schedule": "cosine", "t": 7, "base_lr": 0.3, "params": {"T_max": 20, "eta_min": 0.01}}
    resumed_optimizer, resumed = make()
    resumed.load_state_dict(saved)
    assert resumed_optimizer.lr == optimizer.lr
    for _ in range(10):
        schedule.step()
        resumed.step()
        assert resumed_optimizer.lr == optimizer.lr


def test_registries_are_plain_dicts_of_the_classes():
    assert OPTIMIZERS == {"sgd": SGD, "adam": Adam}
    assert SCHEDULES == {
        "constant": ConstantSchedule,
        "step": StepSchedule,
        "exponential": ExponentialSchedule,
        "cosine": CosineSchedule,
        "linear": LinearSchedule,
        "invscaling": InverseScalingSchedule,
    }
    assert all(cls.name == name for name, cls in {**OPTIMIZERS, **SCHEDULES}.items())


# ----- state_dict: resuming is invisible ---------------------------------------

RESUME_CASES = [
    ("sgd", {"lr": 5e-3}),
    ("sgd", {"lr": 5e-3, "momentum": 0.9, "weight_decay": 0.01}),
    ("sgd", {"lr": 5e-3, "momentum": 0.9, "nesterov": True}),
    ("adam", {"lr": 0.05}),
    ("adam", {"lr": 0.05, "betas": (0.5, 0.9), "eps": 1e-3, "weight_decay": 0.01}),
]


@pytest.mark.parametrize("name, kwargs", RESUME_CASES, ids=lambda v: str(v))
def test_json_round_trip_of_state_dict_continues_identically(name, kwargs):
    x, y = Value(-1.2), Value(1.0)
    straight = OPTIMIZERS[name]([x, y], **kwargs)
    descend(straight, x, y, 25)

    x1, y1 = Value(-1.2), Value(1.0)
    first = OPTIMIZERS[name]([x1, y1], **kwargs)
    descend(first, x1, y1, 10)
    saved = json.dumps({"params": [x1.data, y1.data], "optimizer": first.state_dict()})

    loaded = json.loads(saved)
    x2, y2 = (Value(v) for v in loaded["params"])
    second = OPTIMIZERS[name]([x2, y2], **kwargs)
    second.load_state_dict(loaded["optimizer"])
    assert second.state_dict() == first.state_dict()
    descend(second, x2, y2, 15)
    assert (x2.data, y2.data) == (x.data, y.data)  # bit-identical, not just close
    assert second.state_dict() == straight.state_dict()


def test_adam_resume_with_a_schedule_on_random_gradients():
    rng = random.Random(3)
    grads = [[rng.gauss(0.0, 1.0) for _ in range(5)] for _ in range(30)]
    cut = rng.randrange(1, 29)

    def run(params, optimizer, schedule, steps):
        for g in steps:
            for p, gi in zip(params, g):
                p.grad = gi
            optimizer.step()
            schedule.step()

    def make(data):
        params = [Value(v) for v in data]
        optimizer = Adam(params, lr=0.1, weight_decay=0.01)
        return params, optimizer, ExponentialSchedule(optimizer, gamma=0.9)

    start = [rng.uniform(-1.0, 1.0) for _ in range(5)]
    params, optimizer, schedule = make(start)
    run(params, optimizer, schedule, grads)

    params1, optimizer1, schedule1 = make(start)
    run(params1, optimizer1, schedule1, grads[:cut])
    saved = json.loads(json.dumps([[p.data for p in params1], optimizer1.state_dict(), schedule1.state_dict()]))
    params2, optimizer2, schedule2 = make(saved[0])
    optimizer2.load_state_dict(saved[1])
    schedule2.load_state_dict(saved[2])
    run(params2, optimizer2, schedule2, grads[cut:])
    assert [p.data for p in params2] == [p.data for p in params]
    assert optimizer2.lr == optimizer.lr


def test_state_dict_is_plain_json_data():
    def plain(obj):
        if isinstance(obj, dict):
            return all(type(k) is str and plain(v) for k, v in obj.items())
        if isinstance(obj, list):
            return all(plain(v) for v in obj)
        return obj is None or type(obj) in (bool, int, float, str)

    x, y = Value(-1.2), Value(1.0)
    sgd = SGD([x, y], lr=1e-3, momentum=0.9)
    adam = Adam([x, y])
    assert sgd.state_dict()["momentum_buffer"] is None  # no buffer before the first step
    descend(sgd, x, y, 2)
    descend(adam, x, y, 2)
    for sd in (sgd.state_dict(), adam.state_dict()):
        assert plain(sd), sd
    assert sgd.state_dict()["step"] == 2 and len(sgd.state_dict()["momentum_buffer"]) == 2
    assert adam.state_dict()["betas"] == [0.9, 0.999]


LOAD_ERRORS = [
    ("adam", lambda sd: sd.update(optimizer="sgd"), ValueError, "state_dict['optimizer'] is 'sgd', but this is a 'adam' optimizer"),
    ("adam", lambda sd: sd.pop("exp_avg_sq"), ValueError, "state_dict is missing keys ['exp_avg_sq']"),
    ("adam", lambda sd: sd.update(amsgrad=False), ValueError, "state_dict has unknown keys ['amsgrad']"),
    ("adam", lambda sd: sd.update(exp_avg=[0.0]), ValueError, "state_dict['exp_avg'] has 1 entries, but the optimizer has 2 parameters"),
    ("adam", lambda sd: sd.update(exp_avg_sq=[0.0, "x"]), TypeError, "state_dict['exp_avg_sq'][1] must be a real number, got str: 'x'"),
    ("adam", lambda sd: sd.update(betas=[0.9, 1.0]), ValueError, "state_dict['betas'][1] must be a finite number in [0, 1), got 1.0"),
    ("adam", lambda sd: sd.update(lr=-1.0), ValueError, "state_dict['lr'] must be a finite number >= 0, got -1.0"),
    ("adam", lambda sd: sd.update(step=-1), ValueError, "state_dict['step'] must be an int >= 0, got -1"),
    ("sgd", lambda sd: sd.update(momentum_buffer=[1.0, 2.0, 3.0]), ValueError, "state_dict['momentum_buffer'] has 3 entries, but the optimizer has 2 parameters"),
    ("sgd", lambda sd: sd.update(nesterov=True, momentum=0.0), ValueError, "state_dict['nesterov'] needs state_dict['momentum'] > 0, got 0.0"),
    ("sgd", lambda sd: sd.update(momentum=0.0), ValueError, "state_dict has a momentum_buffer but momentum=0.0"),
    ("sgd", lambda sd: sd.update(optimizer="adam"), ValueError, "state_dict['optimizer'] is 'adam', but this is a 'sgd' optimizer"),
]


@pytest.mark.parametrize("name, change, error, message", LOAD_ERRORS, ids=[m for *_, m in LOAD_ERRORS])
def test_load_state_dict_rejects_bad_state_and_leaves_the_optimizer_unchanged(name, change, error, message):
    x, y = Value(-1.2), Value(1.0)
    kwargs = {"lr": 1e-3, "momentum": 0.9} if name == "sgd" else {"lr": 0.01}
    optimizer = OPTIMIZERS[name]([x, y], **kwargs)
    descend(optimizer, x, y, 3)
    sd = optimizer.state_dict()
    before = json.dumps(sd)
    change(sd)
    with pytest.raises(error, match=re.escape(message)):
        optimizer.load_state_dict(sd)
    assert json.dumps(optimizer.state_dict()) == before


def test_load_state_dict_rejects_a_non_dict():
    with pytest.raises(TypeError, match=re.escape("state_dict must be a dict, got list")):
        SGD([Value(1.0)], lr=0.1).load_state_dict([])


def test_schedule_load_state_dict_rejects_another_schedule_and_stays_unchanged():
    optimizer = SGD([Value(0.0)], lr=0.1)
    schedule = StepSchedule(optimizer, step_size=3)
    schedule.step()
    before = (schedule.state_dict(), optimizer.lr)
    other = ExponentialSchedule(SGD([Value(0.0)], lr=0.1), gamma=0.5).state_dict()
    with pytest.raises(ValueError, match=re.escape("state_dict['schedule'] is 'exponential', but this is a 'step' schedule")):
        schedule.load_state_dict(other)
    changed = dict(schedule.state_dict(), params={"step_size": 4, "gamma": 0.1})
    with pytest.raises(ValueError, match=re.escape("state_dict['params'] is {'step_size': 4, 'gamma': 0.1}, but this schedule has {'step_size': 3, 'gamma': 0.1}")):
        schedule.load_state_dict(changed)
    with pytest.raises(ValueError, match=re.escape("state_dict['t'] must be an int >= 0, got -2")):
        schedule.load_state_dict(dict(schedule.state_dict(), t=-2))
    with pytest.raises(ValueError, match=re.escape("state_dict is missing keys ['base_lr']")):
        schedule.load_state_dict({"schedule": "step", "t": 1, "params": {"step_size": 3, "gamma": 0.1}})
    assert (schedule.state_dict(), optimizer.lr) == before


# ----- argument validation ---------------------------------------------------------


def p2():
    return [Value(1.0), Value(2.0)]


INVALID = [
    (lambda: SGD(p2(), lr=-0.1), ValueError, "lr must be a finite number > 0, got -0.1"),
    (lambda: SGD(p2(), lr=0), ValueError, "lr must be a finite number > 0, got 0"),
    (lambda: SGD(p2(), lr=math.inf), ValueError, "lr must be a finite number > 0, got inf"),
    (lambda: SGD(p2(), lr=math.nan), ValueError, "lr must be a finite number > 0, got nan"),
    (lambda: SGD(p2(), lr=True), TypeError, "lr must be a finite number > 0, got True"),
    (lambda: SGD(p2(), lr="0.1"), TypeError, "lr must be a finite number > 0, got '0.1'"),
    (lambda: SGD(p2(), lr=0.1, momentum=1.0), ValueError, "momentum must be a finite number in [0, 1), got 1.0"),
    (lambda: SGD(p2(), lr=0.1, momentum=-0.5), ValueError, "momentum must be a finite number in [0, 1), got -0.5"),
    (lambda: SGD(p2(), lr=0.1, momentum="0.9"), TypeError, "momentum must be a finite number in [0, 1), got '0.9'"),
    (lambda: SGD(p2(), lr=0.1, weight_decay=-0.01), ValueError, "weight_decay must be a finite number >= 0, got -0.01"),
    (lambda: SGD(p2(), lr=0.1, weight_decay=math.inf), ValueError, "weight_decay must be a finite number >= 0, got inf"),
    (lambda: SGD(p2(), lr=0.1, weight_decay=False), TypeError, "weight_decay must be a finite number >= 0, got False"),
    (lambda: SGD(p2(), lr=0.1, momentum=0.0, nesterov=True), ValueError, "nesterov needs momentum > 0, got 0.0"),
    (lambda: SGD(p2(), lr=0.1, momentum=0.9, nesterov=1), TypeError, "nesterov must be true or false, got 1"),
    (lambda: SGD([], lr=0.1), ValueError, "params must contain at least one Value, got an empty list"),
    (lambda: SGD(iter(()), lr=0.1), ValueError, "params must contain at least one Value, got an empty list"),
    (lambda: SGD([Value(1.0), 2.0], lr=0.1), TypeError, "params[1] must be a Value, got float: 2.0"),
    (lambda: SGD(Value(1.0), lr=0.1), TypeError, "params must be an iterable of Values (such as model.parameters()), got Value"),
    (lambda: SGD([Value(1.0)] * 2, lr=0.1), ValueError, "params[1] is the same Value as params[0]"),
    (lambda: Adam(p2(), lr=0.0), ValueError, "lr must be a finite number > 0, got 0.0"),
    (lambda: Adam(p2(), betas=(1.0, 0.999)), ValueError, "betas[0] must be a finite number in [0, 1), got 1.0"),
    (lambda: Adam(p2(), betas=(0.9, -0.1)), ValueError, "betas[1] must be a finite number in [0, 1), got -0.1"),
    (lambda: Adam(p2(), betas=0.9), TypeError, "betas must be a pair (beta1, beta2) of finite numbers, each in [0, 1), got 0.9"),
    (lambda: Adam(p2(), betas=(0.9, True)), TypeError, "betas[1] must be a finite number in [0, 1), got True"),
    (lambda: Adam(p2(), eps=0.0), ValueError, "eps must be a finite number > 0, got 0.0"),
    (lambda: Adam(p2(), eps=-1e-8), ValueError, "eps must be a finite number > 0, got -1e-08"),
    (lambda: Adam(p2(), weight_decay=-1), ValueError, "weight_decay must be a finite number >= 0, got -1"),
    (lambda: Adam([]), ValueError, "params must contain at least one Value, got an empty list"),
]


def sched(cls, **params):
    return cls(SGD(p2(), lr=0.1), **params)


INVALID += [
    (lambda: sched(StepSchedule, step_size=0), ValueError, "step_size must be an int >= 1, got 0"),
    (lambda: sched(StepSchedule, step_size=2.5), TypeError, "step_size must be an int >= 1, got 2.5"),
    (lambda: sched(StepSchedule, step_size=True), TypeError, "step_size must be an int >= 1, got True"),
    (lambda: sched(StepSchedule, step_size=3, gamma=0.0), ValueError, "gamma must be a finite number > 0, got 0.0"),
    (lambda: sched(ExponentialSchedule, gamma=-0.5), ValueError, "gamma must be a finite number > 0, got -0.5"),
    (lambda: sched(ExponentialSchedule, gamma="0.9"), TypeError, "gamma must be a finite number > 0, got '0.9'"),
    (lambda: sched(CosineSchedule, T_max=0), ValueError, "T_max must be an int >= 1, got 0"),
    (lambda: sched(CosineSchedule, T_max=10, eta_min=-0.1), ValueError, "eta_min must be a finite number >= 0, got -0.1"),
    (lambda: sched(LinearSchedule, start_factor=0.0, total_iters=10), ValueError, "start_factor must be a finite number in (0, 1], got 0.0"),
    (lambda: sched(LinearSchedule, start_factor=1.5, total_iters=10), ValueError, "start_factor must be a finite number in (0, 1], got 1.5"),
    (lambda: sched(LinearSchedule, end_factor=-0.1, total_iters=10), ValueError, "end_factor must be a finite number in [0, 1], got -0.1"),
    (lambda: sched(LinearSchedule, end_factor=1.1, total_iters=10), ValueError, "end_factor must be a finite number in [0, 1], got 1.1"),
    (lambda: sched(LinearSchedule, total_iters=0), ValueError, "total_iters must be an int >= 1, got 0"),
    (lambda: sched(InverseScalingSchedule, power_t=-0.5), ValueError, "power_t must be a finite number >= 0, got -0.5"),
    (lambda: sched(ConstantSchedule).lr_at(-1), ValueError, "t must be an int >= 0, got -1"),
    (lambda: sched(ConstantSchedule).lr_at(1.0), TypeError, "t must be an int >= 0, got 1.0"),
    (lambda: ConstantSchedule(0.1), TypeError, "a schedule needs an optimizer with a float lr, got float"),
]


@pytest.mark.parametrize("make, error, message", INVALID, ids=[m for *_, m in INVALID])
def test_invalid_arguments_are_rejected_with_the_value(make, error, message):
    with pytest.raises(error, match=re.escape(message)):
        make()


def test_lr_attribute_is_checked_when_set_but_may_reach_zero():
    optimizer = SGD(p2(), lr=0.1)
    optimizer.lr = 0  # a schedule may anneal to exactly zero
    assert optimizer.lr == 0.0 and type(optimizer.lr) is float
    with pytest.raises(ValueError, match=re.escape("lr must be a finite number >= 0, got -0.5")):
        optimizer.lr = -0.5
    with pytest.raises(TypeError, match=re.escape("lr must be a finite number >= 0, got 'fast'")):
        optimizer.lr = "fast"
    assert optimizer.lr == 0.0


# ----- array twins: the same trajectory on flat arrays, bit for bit -----------------------

import numpy as np  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from micronet.optim import AdamArrays, SGDArrays, array_twin  # noqa: E402

sgd_settings = st.fixed_dictionaries({
    "lr": st.floats(1e-4, 2.0),
    "momentum": st.sampled_from([0.0, 0.5, 0.9, 0.99]),
    "weight_decay": st.sampled_from([0.0, 1e-4, 0.1]),
}).flatmap(lambda kw: st.fixed_dictionaries({**{k: st.just(v) for k, v in kw.items()},
                                             "nesterov": st.just(False) if kw["momentum"] == 0.0 else st.booleans()}))
adam_settings = st.fixed_dictionaries({
    "lr": st.floats(1e-4, 0.5),
    "betas": st.tuples(st.sampled_from([0.0, 0.3, 0.5, 0.9]), st.sampled_from([0.0, 0.9, 0.999])),
    "eps": st.sampled_from([1e-8, 1e-3]),
    "weight_decay": st.sampled_from([0.0, 1e-2]),
})


def run_both(make, n_params, n_steps, seed):
    """The scalar optimizer on Values and its twin on arrays, fed the same gradients and lrs."""
    rng = random.Random(seed)
    start = [rng.uniform(-2, 2) for _ in range(n_params)]
    values = [Value(x) for x in start]
    scalar, shadow = make(values), make([Value(x) for x in start])
    twin = array_twin(shadow)
    p = np.array(start)
    for step in range(n_steps):
        grads = [rng.uniform(-3, 3) * 10.0 ** rng.randint(-8, 2) for _ in range(n_params)]
        grads[0] = 0.0  # a zero gradient too
        lr = scalar.lr * rng.choice([1.0, 0.5, 1.5])  # a schedule may change lr between steps
        scalar.lr = shadow.lr = lr
        for v, g in zip(values, grads):
            v.grad = g
        scalar.step()
        g = np.array(grads)
        twin.step(p, g)
        assert g.tolist() == grads  # the gradient array is left as it was
        assert p.tolist() == [v.data for v in values], f"step {step}"
    twin.store()
    return scalar, shadow


@settings(max_examples=40, deadline=None)
@given(kwargs=sgd_settings, seed=st.integers(0, 10**6))
def test_sgd_twin_trajectory_is_bit_identical(kwargs, seed):
    scalar, shadow = run_both(lambda params: SGD(params, **kwargs), 7, 6, seed)
    assert shadow.state_dict() == scalar.state_dict()  # momentum buffer and step count, exactly


@settings(max_examples=40, deadline=None)
@given(kwargs=adam_settings, seed=st.integers(0, 10**6))
def test_adam_twin_trajectory_is_bit_identical(kwargs, seed):
    """Both of _lerp's branches (beta1 above and below 0.5), eps and weight decay."""
    scalar, shadow = run_both(lambda params: Adam(params, **kwargs), 7, 6, seed)
    assert shadow.state_dict() == scalar.state_dict()


def test_twin_store_and_load_round_trip_the_state():
    opt = Adam([Value(1.0), Value(2.0)], lr=0.1)
    twin = array_twin(opt)
    assert isinstance(twin, AdamArrays) and isinstance(array_twin(SGD([Value(1.0)], lr=0.1)), SGDArrays)
    p = np.array([1.0, 2.0])
    twin.step(p, np.array([0.5, -0.25]))
    assert opt.step_count == 0 and opt.exp_avg == [0.0, 0.0]  # nothing written until store
    twin.store()
    saved = opt.state_dict()
    assert saved["step"] == 1 and saved["exp_avg"] != [0.0, 0.0]
    twin.step(p, np.array([0.5, -0.25]))
    twin.load()  # back to the stored state
    assert twin.step_count == 1 and twin.exp_avg.tolist() == saved["exp_avg"]


def test_sgd_twin_keeps_no_buffer_without_momentum_and_starts_one_with_it():
    opt = SGD([Value(1.0)], lr=0.1, momentum=0.0)
    twin = array_twin(opt)
    twin.step(np.array([1.0]), np.array([2.0]))
    twin.store()
    assert opt.momentum_buffer is None and opt.step_count == 1
    opt = SGD([Value(1.0)], lr=0.1, momentum=0.9)
    twin = array_twin(opt)
    twin.step(np.array([1.0]), np.array([2.0]))
    twin.store()
    assert opt.momentum_buffer == [2.0]  # the first gradient, as PyTorch


def test_array_twin_refuses_other_optimizers_and_subclasses():
    class Clipped(SGD):
        def step(self):
            super().step()

    with pytest.raises(TypeError, match="no array twin for Clipped: compiled training supports SGD and Adam"):
        array_twin(Clipped([Value(1.0)], lr=0.1))
    with pytest.raises(TypeError, match="no array twin for object"):
        array_twin(object())
