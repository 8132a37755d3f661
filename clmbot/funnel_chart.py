"""The funnel as a PNG, for `/clm funnel chart`: customers per stage now, and how many moved
on from each stage to the next in the period.

It is posted to the channel, so it draws aggregates only: counts per stage and conversion
rates, never a customer. matplotlib is set up and driven as the trend chart does it
(`clmbot.feedback.chart`): imported on first use, through the Figure/Agg API (never pyplot,
whose global state two requests drawing at once would share), with a config directory it can
write.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import TYPE_CHECKING, Any

from clmbot.feedback.chart import (
    DPI,
    HEIGHT_PX,
    WIDTH_PX,
    _prepare_matplotlib,
    png_bytes,
    say_empty,
)
from clmbot.plain import day, percent, period_days
from clmbot.results import Conversion, Funnel

if TYPE_CHECKING:  # matplotlib itself is imported when a chart is drawn, not before
    from matplotlib.axes import Axes
    from matplotlib.transforms import Transform

_BAR = "#2563eb"  # the trend chart's blue: the stages a customer moves through
_ENDED = "#cbd5e1"  # a stage that ends the funnel (churned): counted, but not the flow
_ARC = "#9ca3af"
_MUTED = "#6b7280"
_INK = "#111827"
_RULE = "#e5e7eb"

_AXES = (0.175, 0.13, 0.62, 0.69)  # the bars' box in the figure: left, bottom, width, height
_ARC_X, _TEXT_X = 1.02, 1.09  # the conversions' arcs and words, in widths of that box
_MIN_ROWS = 5.0  # a funnel of two stages keeps bars of the usual thickness, at the top
_GAP = 0.7  # the space between the funnel and the stages that end it, in rows
_CROWDED = 8  # more rows than this: smaller type, no shares, no arcs
_ARC_PX = 20.0  # how far an arc reaches up and down from its middle, at most, in pixels
_LABEL_CHARS = 18  # a stage name longer than this is cut, with "…", to fit its margin


def funnel_png(funnel: Funnel, *, title: str, zone: tzinfo) -> bytes:
    """Customers per stage at `funnel.now` as horizontal bars in funnel order, each with its
    count and its share of all customers; churned (any terminal stage) apart, below, in grey,
    since no one moves on from there. Between two consecutive funnel stages, on the right,
    the conversion in the period (`→ 64%`, and of how many): where the funnel leaks is what
    a retention team looks for. Dates are days in `zone`. A funnel without customers still
    gives a chart, which says so.
    """
    _prepare_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.transforms import blended_transform_factory

    ended = set(funnel.terminal)
    moving = [s for s in funnel.stages if s.stage not in ended]
    after = [s for s in funnel.stages if s.stage in ended]
    # (stage, row, ended?): the funnel from row 0 down, then a gap, then the stages that end it
    rows = [(s, float(i), False) for i, s in enumerate(moving)]
    rows += [(s, len(moving) + _GAP + j, True) for j, s in enumerate(after)]
    ys = [y for _, y, _ in rows]
    total = funnel.total
    widest = max((s.customers for s in funnel.stages), default=0)
    bottom = max(max(ys, default=0) + 0.6, _MIN_ROWS - 0.6)
    row_px = _AXES[3] * HEIGHT_PX / (bottom + 0.6)  # how tall a row is drawn
    crowded = len(rows) > _CROWDED
    # Type a row can hold: 10 and 9 points, less when many stages share the height.
    label_size = min(8.0, max(4.0, row_px * 0.55)) if crowded else 10.0
    count_size = label_size - 1

    fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes(_AXES)
    ax.set_ylim(bottom, -0.6)  # the first stage on top
    ax.set_xlim(0, max(widest, 1) * 1.22)  # room for the count after the longest bar
    ax.barh(
        ys,
        [s.customers for s, _, _ in rows],
        height=0.62,
        color=[_ENDED if gone else _BAR for _, _, gone in rows],
        zorder=2,
    )
    ax.set_yticks(ys, [_label(s.stage) for s, _, _ in rows], fontsize=label_size, color=_INK)
    for tick, (_, _, gone) in zip(ax.get_yticklabels(), rows, strict=True):
        if gone:
            tick.set_color(_MUTED)
    ax.tick_params(axis="y", length=0, pad=6)
    _fit_labels(fig, ax)
    ax.xaxis.set_visible(False)
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    ax.spines["left"].set_color("#d1d5db")
    if moving and after:
        ax.axhline(len(moving) - 1 + (_GAP + 1) / 2, color=_RULE, linewidth=1, zorder=1)

    for s, y, gone in rows:
        count = ax.annotate(
            f"{s.customers:,}",
            (s.customers, y),
            textcoords="offset points",
            xytext=(5, 0),
            va="center",
            fontsize=count_size,
            fontweight="bold",
            color=_MUTED if gone else _INK,
        )
        if total and not crowded:
            # Its share of all customers, in grey, just after the count.
            ax.annotate(
                f"{s.customers / total:.0%}",
                (1, 0.5),
                xycoords=count,
                textcoords="offset points",
                xytext=(4, 0),
                va="center",
                fontsize=count_size - 1,
                color=_MUTED,
            )

    # The conversions, in a column right of the bars, each halfway between its two stages.
    column = blended_transform_factory(ax.transAxes, ax.transData)
    reach = None if crowded else min(0.5, _ARC_PX / row_px)
    if len(moving) > 1:
        ax.text(
            _ARC_X,
            -0.6,
            "moved on in\nthe period",
            transform=column,
            fontsize=8,
            color=_MUTED,
            va="bottom",
            linespacing=1.1,
        )
    at = {(c.from_stage, c.to_stage): c for c in funnel.conversions}
    for i in range(len(moving) - 1):
        conversion = at.get((moving[i].stage, moving[i + 1].stage))
        if conversion is not None:
            _conversion(ax, column, conversion, i + 0.5, reach, label_size)

    fig.text(0.015, 0.955, title, fontsize=13, fontweight="bold", va="top", color=_INK)
    fig.text(0.015, 0.885, _subtitle(funnel, zone), fontsize=9, color=_MUTED, va="top")
    if len(moving) > 1:
        fig.text(
            0.015,
            0.03,
            "Moved on: of the customers in a stage during the period, the share who reached "
            "the next stage or a later one within it.",
            fontsize=7,
            color=_MUTED,
        )
    if total == 0:
        say_empty(ax, "no customers yet")
    return png_bytes(fig)


def _conversion(
    ax: Axes, column: Transform, c: Conversion, y: float, reach: float | None, size: float
) -> None:
    """At height `y` (halfway between two stages): an arc from the one down to the next,
    reaching `reach` rows up and down (None: no arc, the rows are too close), and beside it
    `→ 64%` in the funnel's colour over how many of how many; `→ —` in grey when nobody was
    in the first stage during the period. A crowded chart gets the rate alone, in `size`."""
    if reach is not None:
        ax.annotate(
            "",
            xy=(_ARC_X, y + reach),
            xycoords=column,
            xytext=(_ARC_X, y - reach),
            textcoords=column,
            arrowprops={
                "arrowstyle": "-|>,head_length=0.35,head_width=0.18",
                "connectionstyle": "arc3,rad=-0.55",
                "color": _ARC,
                "linewidth": 1,
                "shrinkA": 3,
                "shrinkB": 3,
            },
        )
    rate = f"→ {percent(c.rate)}"
    colour = _BAR if c.rate is not None else _MUTED
    if reach is None:
        ax.text(
            _TEXT_X,
            y,
            rate,
            transform=column,
            fontsize=size,
            weight="bold",
            color=colour,
            va="center",
        )
        return
    # Two lines about the middle, placed in points so that they never overlap.
    for text, size, weight, shade, rise, align in (
        (rate, 11, "bold", colour, 0.5, "bottom"),
        (f"{c.converted:,} of {c.base:,}", 8, "normal", _MUTED, -0.5, "top"),
    ):
        ax.annotate(
            text,
            (_TEXT_X, y),
            xycoords=column,
            textcoords="offset points",
            xytext=(0, rise),
            fontsize=size,
            fontweight=weight,
            color=shade,
            va=align,
        )


def _subtitle(funnel: Funnel, zone: tzinfo) -> str:
    """The total and both dates: the bars are a day (`now`), the conversions a period."""
    return (
        f"{funnel.total:,} customers on {day(funnel.now, zone)}, by stage · moved on: "
        f"{day(funnel.since, zone)} to {day(funnel.now, zone)} "
        f"({period_days(funnel.since, funnel.now)} days)"
    )


def _label(stage: str) -> str:
    """A long stage name cut in its middle: `customer_onb…week1`, `…week2` stay apart."""
    if len(stage) <= _LABEL_CHARS:
        return stage
    head = (_LABEL_CHARS - 1) // 2
    return stage[:head] + "…" + stage[-(_LABEL_CHARS - 1 - head) :]


def _fit_labels(fig: Any, ax: Any) -> None:
    """A stage name in smaller type when it would not fit left of the bars (wide letters,
    `mmmm…`, take twice the room of narrow ones): never cut by the image's edge, and the
    names that fit keep their size."""
    renderer = fig.canvas.get_renderer()
    room = _AXES[0] * WIDTH_PX - 12  # the margin, less the ticks' pad and a little air
    for label in ax.get_yticklabels():
        width = label.get_window_extent(renderer).width
        if width > room:
            label.set_fontsize(max(4.0, label.get_fontsize() * room / width))
