"""The rhythm model's fit reaches the minimum of its loss, whatever the order of the
customers: the risks it gives do not depend on where an optimiser happened to stop."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

from clmbot.risk import rhythm
from clmbot.risk.facts import Purchases

NOW = 20_000.0


def _customers(n: int, seed: int, now: float = NOW) -> tuple[Purchases, np.ndarray]:
    """`n` made-up buyers as they stand at `now`, and the ids of those who come back: the
    longer overdue against their own gap, the likelier gone."""
    rng = np.random.default_rng(seed)
    gap = rng.choice([7.0, 14.0, 30.0, 60.0], n) * rng.uniform(0.7, 1.3, n)
    days_bought = 1 + rng.poisson(6, n).astype(float)
    first = now - rng.uniform(20, 700, n)
    last = np.minimum(first + (days_bought - 1) * gap, now - rng.uniform(0, 200, n))
    last = np.maximum(last, first)
    orders = days_bought + rng.poisson(1, n)
    p = Purchases(
        rng.permutation(n).astype(np.int64) * 3,  # ids in no particular order
        first,
        last,
        days_bought,
        orders,
        orders * rng.uniform(5, 90, n),
    )
    overdue = (now - last) / gap
    gone = rng.random(n) < expit(overdue - 2)
    return p, p.ids[~gone]


def _objective(model: rhythm.Model, p: Purchases, came_back: np.ndarray):
    """The fit's loss and its gradient at `w`, on the model's own standardised features."""
    z = (rhythm.features(p, NOW) - model.mean) / model.scale
    design = np.column_stack([z, np.ones(len(p.ids))])
    y = (~np.isin(p.ids, came_back)).astype(float)

    def at(w: np.ndarray) -> tuple[float, np.ndarray]:
        s = design @ w
        value = float(np.sum(np.logaddexp(0, s) - y * s) + w @ w)
        return value, design.T @ (expit(s) - y) + 2 * w

    return at


def test_the_fit_is_the_minimum_of_its_loss():
    past, came_back = _customers(50_000, seed=1)
    model = rhythm.fit(past, NOW, came_back)
    assert model.weights is not None and model.learned_from == 50_000
    at = _objective(model, past, came_back)
    value, gradient = at(model.weights)
    # Zero to rounding: a millionth of one customer's share of the gradient.
    assert np.abs(gradient).max() < 1e-6
    # Nothing an optimiser run to its tightest finds is lower.
    tight = minimize(
        at, model.weights, jac=True, method="L-BFGS-B", options={"ftol": 0, "gtol": 1e-12}
    )
    assert tight.fun >= value - 1e-9 * abs(value)


def test_the_same_customers_in_another_order_get_the_same_risks():
    past, came_back = _customers(50_000, seed=2)
    order = np.random.default_rng(3).permutation(len(past.ids))
    shuffled = Purchases(*(getattr(past, f)[order] for f in Purchases.__dataclass_fields__))
    now, _ = _customers(20_000, seed=4, now=NOW + 90)
    one = rhythm.fit(past, NOW, came_back).p_inactive(now, NOW + 90)
    other = rhythm.fit(shuffled, NOW, came_back).p_inactive(now, NOW + 90)
    assert np.abs(one - other).max() < 1e-9
    assert np.array_equal(np.rint(100 * one), np.rint(100 * other))


def test_a_fit_started_from_a_few_ends_where_one_from_zero_does(monkeypatch):
    """A large fit starts from the minimum for an evenly spread few: it ends at the same
    minimum as from zero, in fewer steps over everyone."""
    past, came_back = _customers(60_000, seed=5)
    now, _ = _customers(20_000, seed=6, now=NOW + 90)
    steps: list[int] = []  # the rows of each Newton step (each works out one expit)

    def counted(s: np.ndarray) -> np.ndarray:
        steps.append(len(s))
        return expit(s)

    monkeypatch.setattr(rhythm, "expit", counted)
    cold = rhythm.fit(past, NOW, came_back)
    cold_steps, steps[:] = steps.count(60_000), []
    monkeypatch.setattr(rhythm, "WARM_FROM", 40_000)
    monkeypatch.setattr(rhythm, "WARM_SAMPLE", 5_000)
    warm = rhythm.fit(past, NOW, came_back)
    assert steps[0] == 5_000 and set(steps) == {5_000, 60_000}  # the few first
    assert steps.count(60_000) < cold_steps
    assert warm.weights is not None and cold.weights is not None
    assert np.abs(warm.weights - cold.weights).max() < 1e-7
    at = _objective(warm, past, came_back)
    assert np.abs(at(warm.weights)[1]).max() < 1e-6
    one, other = cold.p_inactive(now, NOW + 90), warm.p_inactive(now, NOW + 90)
    assert np.array_equal(np.rint(100 * one), np.rint(100 * other))
