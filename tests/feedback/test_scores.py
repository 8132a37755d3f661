"""The arithmetic of PRODUCT.md's "Feedback arithmetic", checked against values worked out by
hand (the working is in each test)."""

import pytest

from clmbot.feedback.scores import csat, is_detractor, nps, nps_category


def test_nps_with_its_adjusted_wald_interval():
    # 5 promoters, 3 passives, 2 detractors: NPS = 100 * (5 - 2) / 10 = 30.
    # n' = 13, p' = 5.75 / 13 = 0.442308, d' = 2.75 / 13 = 0.211538, NPS' = 0.230769,
    # variance = (0.653846 - 0.230769²) / 13 = (0.653846 - 0.053254) / 13 = 0.046199,
    # half width = 1.96 * sqrt(0.046199) = 1.96 * 0.214940 = 0.421283,
    # interval = 100 * (0.230769 ∓ 0.421283) = -19.05 .. 65.21
    s = nps(5, 3, 2)
    assert (s.promoters, s.passives, s.detractors, s.n) == (5, 3, 2, 10)
    assert s.score == 30.0
    assert s.low == pytest.approx(-19.0514, abs=1e-3)
    assert s.high == pytest.approx(65.2052, abs=1e-3)


def test_nps_of_a_single_answer():
    # One promoter: n' = 4, p' = 1.75 / 4 = 0.4375, d' = 0.75 / 4 = 0.1875, NPS' = 0.25,
    # variance = (0.625 - 0.0625) / 4 = 0.140625, half width = 1.96 * 0.375 = 0.735,
    # interval = 100 * (0.25 ∓ 0.735) = -48.5 .. 98.5
    s = nps(1, 0, 0)
    assert (s.n, s.score) == (1, 100.0)
    assert s.low == pytest.approx(-48.5) and s.high == pytest.approx(98.5)
    # One detractor is the mirror image.
    s = nps(0, 0, 1)
    assert (s.score, s.low, s.high) == (-100.0, pytest.approx(-98.5), pytest.approx(48.5))


def test_all_promoters_is_clipped_at_100():
    # 20 promoters: n' = 23, p' = 20.75 / 23 = 0.902174, d' = 0.75 / 23 = 0.032609,
    # NPS' = 0.869565, variance = (0.934783 - 0.756144) / 23 = 0.0077669,
    # half width = 1.96 * 0.088130 = 0.172735: 69.68 .. 104.23, clipped to 100.
    s = nps(20, 0, 0)
    assert s.score == 100.0
    assert s.low == pytest.approx(69.683, abs=1e-3)
    assert s.high == 100.0


def test_no_answers_is_no_score_not_zero():
    s = nps(0, 0, 0)
    assert (s.n, s.score, s.low, s.high) == (0, None, None, None)
    c = csat(0, 0)
    assert (c.n, c.score, c.low, c.high) == (0, None, None, None)


def test_csat_with_its_wilson_interval():
    # 8 satisfied of 10: p = 0.8, z² = 3.8416, denominator = 1 + 3.8416 / 10 = 1.38416,
    # centre = (0.8 + 3.8416 / 20) / 1.38416 = 0.99208 / 1.38416 = 0.716738,
    # half = 1.96 * sqrt(0.8 * 0.2 / 10 + 3.8416 / 400) / 1.38416
    #      = 1.96 * sqrt(0.025604) / 1.38416 = 0.226581,
    # interval = 49.02 .. 94.33
    c = csat(8, 2)
    assert (c.satisfied, c.unsatisfied, c.n, c.score) == (8, 2, 10, 80.0)
    assert c.low == pytest.approx(49.0157, abs=1e-3)
    assert c.high == pytest.approx(94.3319, abs=1e-3)


def test_csat_of_a_single_answer():
    # 1 of 1: denominator = 4.8416, centre = (1 + 1.9208) / 4.8416 = 0.603272,
    # half = 1.96 * sqrt(3.8416 / 4) / 4.8416 = 1.9208 / 4.8416 = 0.396728: 20.65 .. 100
    c = csat(1, 0)
    assert c.score == 100.0
    assert c.low == pytest.approx(20.6543, abs=1e-3)
    assert c.high == pytest.approx(100.0)
    c = csat(0, 1)
    assert (c.score, c.low) == (0.0, 0.0)
    assert c.high == pytest.approx(79.3457, abs=1e-3)


def test_categories():
    assert [nps_category(s) for s in (0, 6, 7, 8, 9, 10)] == [
        "detractor",
        "detractor",
        "passive",
        "passive",
        "promoter",
        "promoter",
    ]
    assert [is_detractor("nps", s) for s in (6, 7)] == [True, False]
    assert [is_detractor("csat", s) for s in (1, 2, 3, 4, 5)] == [True, True, False, False, False]
