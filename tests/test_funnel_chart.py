"""The funnel chart: a real PNG of the size Slack previews, for any shape of funnel (many
stages, long names, no churned stage, nobody at all)."""

from __future__ import annotations

import struct
import sys
from datetime import UTC, datetime
from io import BytesIO
from zoneinfo import ZoneInfo

import pytest

from clmbot.feedback.chart import DPI, HEIGHT_PX, WIDTH_PX
from clmbot.funnel_chart import funnel_png
from clmbot.results import Conversion, Funnel, StageStats

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
SINCE = datetime(2026, 8, 26, 12, tzinfo=UTC)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from the PNG's header: the signature, then the IHDR chunk first."""
    assert png[:8] == PNG_SIGNATURE
    length, kind, width, height = struct.unpack(">I4sII", png[8:24])
    assert (length, kind) == (13, b"IHDR")
    return width, height


def a_funnel(
    counts: list[tuple[str, int]],
    rates: list[tuple[int, int]],
    terminal: tuple[str, ...] = ("churned",),
) -> Funnel:
    """Stages with these customers now; `rates`: (base, converted) between consecutive
    funnel stages, in order."""
    stages = [StageStats(name, n, 0, None, 0) for name, n in counts]
    moving = [name for name, _ in counts if name not in terminal]
    conversions = [
        Conversion(moving[i], moving[i + 1], base, converted)
        for i, (base, converted) in enumerate(rates)
    ]
    return Funnel(SINCE, NOW, stages, conversions, terminal)


TYPICAL = a_funnel(
    [
        ("awareness", 12_840),
        ("consideration", 5_210),
        ("purchase", 1_904),
        ("retention", 1_422),
        ("advocacy", 310),
        ("churned", 2_210),
    ],
    [(14_000, 6_020), (6_400, 1_990), (2_100, 1_800), (0, 0)],  # nobody in retention: "—"
)


def pixels(png: bytes):  # -> numpy array, height x width x channels
    from matplotlib.image import imread

    return imread(BytesIO(png), format="png")


def test_a_funnel_is_a_png_of_the_preview_size():
    png = funnel_png(TYPICAL, title="Customer funnel", zone=ZoneInfo("Asia/Jakarta"))
    assert png_size(png) == (WIDTH_PX, HEIGHT_PX) == (800, 450)
    assert DPI == 100
    image = pixels(png)
    assert image.shape[:2] == (HEIGHT_PX, WIDTH_PX)
    # The funnel's blue bars are drawn (#2563eb), and the churned bar apart, in grey.
    rgb = (image[..., :3] * 255).round()
    assert ((abs(rgb - (37, 99, 235)) <= 2).all(axis=-1)).sum() > 2_000
    assert ((abs(rgb - (203, 213, 225)) <= 2).all(axis=-1)).sum() > 200


def test_nobody_yet_still_draws():
    empty = a_funnel([(s, 0) for s in ("awareness", "purchase", "churned")], [(0, 0)])
    png = funnel_png(empty, title="Customer funnel", zone=UTC)
    assert png_size(png) == (WIDTH_PX, HEIGHT_PX)
    assert pixels(png).std() > 0  # not blank: the labels and the "no customers yet" note


@pytest.mark.parametrize(
    "funnel",
    [
        # many stages with long names, and two that end the funnel
        a_funnel(
            [(f"stage-with-a-long-name-{i}", 100 - 6 * i) for i in range(13)]
            + [("churned", 9), ("lost-to-a-competitor", 4)],
            [(50, 30 - i) for i in range(12)],
            terminal=("churned", "lost-to-a-competitor"),
        ),
        # two stages, none terminal (as a Funnel made without the lifecycle's terminal ones)
        a_funnel([("trial", 5), ("paid", 3)], [(7, 2)], terminal=()),
        # one funnel stage: nothing to convert to
        a_funnel([("customer", 7), ("churned", 1)], []),
    ],
    ids=["many-stages", "no-terminal-stage", "one-funnel-stage"],
)
def test_any_shape_of_funnel(funnel):
    assert png_size(funnel_png(funnel, title="Customer funnel", zone=UTC)) == (WIDTH_PX, HEIGHT_PX)


def test_drawn_without_pyplot():
    """pyplot's global state is shared by requests drawing at once: never imported."""
    funnel_png(TYPICAL, title="Customer funnel", zone=UTC)
    assert "matplotlib.pyplot" not in sys.modules


@pytest.mark.parametrize(
    "names",
    [
        ["mmmmmmmmmmmmmmm", "customer_retention", "WWWWWWWWWWWWWWWWWW"],
        ["customer_onboarding_week1", "customer_onboarding_week2", "customer_onboarding_week3"],
    ],
)
def test_long_stage_names_stay_inside_the_image_and_apart(names):
    from clmbot.funnel_chart import _label

    funnel = a_funnel([(n, 100 - i) for i, n in enumerate(names)], [(10, 5), (10, 5)], ())
    image = pixels(funnel_png(funnel, title="Customer funnel", zone=ZoneInfo("UTC")))
    # The first columns are the background: no letter was cut by the image's edge.
    assert (image[:, :3, :3] > 0.95).all()
    assert len({_label(n) for n in names}) == len(names)
