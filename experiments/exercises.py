"""micrograd's exercise notebook, redone with micronet; prints an OK/WRONG table.

Each check compares micronet's autograd with the notebook's reference numbers
(also pinned in tests/test_exercises.py) and, for the first exercise, with the
derivatives worked out by hand.

    python experiments/exercises.py
"""

import math
import sys

from micronet import Value
from micronet.gradcheck import numerical_grad
from micronet.losses import cross_entropy, softmax

REL = 1e-12  # a few units in the last place


def f(a, b, c):
    return -(a**3) + (3 * b).sin() - 1.0 / c + b**2.5 - a**0.5


def grad_f_by_hand(a, b, c):
    return [-3 * a**2 - 0.5 * a**-0.5, 3 * math.cos(3 * b) + 2.5 * b**1.5, c**-2]


def close(got, expected):
    if isinstance(got, list):
        return len(got) == len(expected) and all(close(g, e) for g, e in zip(got, expected))
    return math.isclose(got, expected, rel_tol=REL, abs_tol=1e-15)


def main():
    rows = []

    def check(name, got, expected):
        rows.append((name, close(got, expected), got, expected))

    # 1. A function of three inputs: value and gradient, by autograd and by hand.
    inputs = [Value(2.0), Value(3.0), Value(4.0)]
    out = f(*inputs)
    out.backward()
    check("f(2, 3, 4)", out.data, 6.336362190988558)
    expected_grad = [-12.353553390593273, 10.25699027111255, 0.0625]
    check("grad f, autograd", [v.grad for v in inputs], expected_grad)
    check("grad f, by hand", grad_f_by_hand(2.0, 3.0, 4.0), expected_grad)

    # 2. Numerical gradients at the same h: the symmetric one is far closer.
    h = 1e-6
    as_float = lambda *xs: f(*map(Value, xs)).data  # noqa: E731
    forward = numerical_grad(as_float, [2.0, 3.0, 4.0], h, method="forward")
    central = numerical_grad(as_float, [2.0, 3.0, 4.0], h, method="central")
    forward_error = max(abs(g - e) for g, e in zip(forward, expected_grad))
    central_error = max(abs(g - e) for g, e in zip(central, expected_grad))
    print(f"h={h}: one-sided max error {forward_error:.3e}, symmetric max error {central_error:.3e}")
    rows.append(("symmetric beats one-sided", central_error < forward_error / 100, central_error, forward_error))

    # 3. Softmax and the negative log-likelihood of class 3.
    logits = [Value(x) for x in (0.0, 3.0, -2.0, 1.0)]
    loss = -softmax(logits)[3].log()
    loss.backward()
    expected_loss = 2.1755153626167147
    expected_logit_grad = [0.041772570515350445, 0.8390245074625319, 0.005653302662216329, -0.8864503806400986]
    check("softmax nll loss", loss.data, expected_loss)
    check("softmax nll grad", [v.grad for v in logits], expected_logit_grad)
    logits = [Value(x) for x in (0.0, 3.0, -2.0, 1.0)]
    loss = cross_entropy(logits, 3)
    loss.backward()
    check("cross_entropy loss", loss.data, expected_loss)
    check("cross_entropy grad", [v.grad for v in logits], expected_logit_grad)

    # 4. The gradient of one softmax output.
    logits = [Value(10.0), Value(3.0)]
    softmax(logits)[1].backward()
    check("d softmax([10, 3])[1]", [v.grad for v in logits], [-0.0009102211801218266, 0.0009102211801218265])

    width = max(len(name) for name, *_ in rows)
    for name, ok, got, expected in rows:
        print(f"{'OK' if ok else 'WRONG':5}  {name:{width}}  got {got}  expected {expected}")
    return 0 if all(ok for _, ok, *_ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
