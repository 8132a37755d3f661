"""The trend of a report as a PNG, for `/clm nps … chart`.

matplotlib is imported inside `trend_png`, not at the top: the bot starts without paying for
it (a few hundred milliseconds), and only a chart request does. It is driven through
`matplotlib.figure.Figure` and the Agg canvas, never pyplot: pyplot keeps global state (not
safe when two requests draw at once) and may try to open a window.

matplotlib wants a writable directory for its config and font cache. A server process may run
with a read-only HOME; before the first import we point `MPLCONFIGDIR` at a private temporary
directory unless the deployment chose one.
"""

from __future__ import annotations

import os
import stat
import tempfile
import threading
from io import BytesIO
from typing import Any

from clmbot.feedback.reports import FeedbackReport

WIDTH_PX, HEIGHT_PX, DPI = 800, 450, 100  # Slack shows images about this size

_setup_lock = threading.Lock()
_ready = False
_LINE = "#2563eb"
_BAND = "#93c5fd"
_MUTED = "#6b7280"


def trend_png(report: FeedbackReport, *, title: str) -> bytes:
    """The monthly score as a line with markers, its 95% interval as a shaded band, months
    without answers as gaps, and under each month how many answers it holds. NPS runs from
    -100 to 100, CSAT from 0 to 100. A report without any answer still gives a chart, which
    says so."""
    _prepare_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.transforms import blended_transform_factory

    nps = report.kind == "nps"
    months = list(report.trend)
    xs = list(range(len(months)))
    nan = float("nan")
    scores = [m.score if m.score is not None else nan for m in months]
    lows = [m.result.low if m.result.low is not None else nan for m in months]
    highs = [m.result.high if m.result.high is not None else nan for m in months]

    fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.08, 0.2, 0.89, 0.6))
    ax.fill_between(xs, lows, highs, color=_BAND, alpha=0.5, linewidth=0, label="95% interval")
    ax.plot(
        xs,
        scores,
        color=_LINE,
        marker="o",
        markersize=5,
        linewidth=2,
        label="every answer that month",
        clip_on=False,  # a month at +100 or 0% keeps its whole marker
    )
    # A month with no answered month beside it has no band to show: a whisker instead.
    for x in xs:
        alone = all(not 0 <= x + d < len(xs) or months[x + d].score is None for d in (-1, 1))
        if alone and months[x].score is not None:
            ax.vlines(x, lows[x], highs[x], color=_BAND, linewidth=6, alpha=0.8)
    ax.set_ylim(-100 if nps else 0, 100)
    if nps:
        ax.axhline(0, color=_MUTED, linewidth=0.8, alpha=0.6)
    ax.set_ylabel("NPS" if nps else "CSAT (% 4 or 5)", fontsize=10)
    ax.tick_params(axis="y", labelsize=9)
    labels = [_month_label(m.month, i == 0 or m.month.month == 1) for i, m in enumerate(months)]
    ax.set_xticks(xs, labels, fontsize=8)
    ax.set_xlim(-0.6, max(len(xs) - 0.4, 0.6))
    ax.grid(axis="y", alpha=0.25)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for x, m in zip(xs, months, strict=True):
        if m.score is not None:
            ax.annotate(
                _shown(m.score, nps),
                (x, m.score),
                textcoords="offset points",
                xytext=(0, 7),
                ha="center",
                fontsize=7,
                color=_LINE,
            )
    # The answers per month, in a row under the months: how much each point can be trusted.
    under = blended_transform_factory(ax.transData, ax.transAxes)
    for x, m in zip(xs, months, strict=True):
        ax.text(x, -0.2, f"{m.n:,}", transform=under, ha="center", fontsize=7, color=_MUTED)
    ax.text(-0.01, -0.2, "answers", transform=ax.transAxes, ha="right", fontsize=7, color=_MUTED)
    if any(m.n for m in months):
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False, ncol=2)

    fig.text(0.01, 0.955, title, fontsize=13, fontweight="bold", va="top")
    fig.text(0.01, 0.885, _subtitle(report), fontsize=9, color=_MUTED, va="top")
    if report.responses == 0:
        say_empty(ax, "no answers in this period")
    return png_bytes(fig)


def say_empty(ax: Any, note: str) -> None:
    """A chart with nothing to draw still answers: it says so, in its middle."""
    ax.text(
        0.5, 0.5, note, transform=ax.transAxes, ha="center", va="center", fontsize=14, color=_MUTED
    )


def png_bytes(fig: Any) -> bytes:
    out = BytesIO()
    fig.savefig(out, format="png", dpi=DPI)
    return out.getvalue()


def _subtitle(report: FeedbackReport) -> str:
    current = report.current
    if current.score is None or current.low is None or current.high is None:
        return "no answers in this period"
    shown = _shown(current.score, report.kind == "nps") + ("" if report.kind == "nps" else "%")
    return (
        f"now {shown} (95% interval {current.low:.0f} to {current.high:.0f}), each "
        f"customer's latest answer: {report.respondents:,} customers, "
        f"{report.responses:,} answers in all"
    )


def _shown(score: float, nps: bool) -> str:
    """+45, -12, 0 for NPS (a sign says which side of zero); 87 for CSAT."""
    whole = round(score)
    return f"{whole:+d}" if nps and whole else f"{whole:d}"


def _month_label(month: Any, with_year: bool) -> str:
    return month.strftime("%b\n%Y") if with_year else month.strftime("%b")


def _prepare_matplotlib() -> None:
    """Once per process, before the first import: a config and cache directory matplotlib
    can write, unless the deployment named one (`MPLCONFIGDIR`)."""
    global _ready
    if _ready:
        return
    with _setup_lock:
        if not _ready:
            os.environ.setdefault("MPLCONFIGDIR", _private_dir())
            _ready = True


def _private_dir() -> str:
    """A directory only this user can write, reused across restarts so the font cache is
    built once: `clmbot-matplotlib-<uid>` in the temporary directory, if it is ours and
    private; otherwise (someone else made it, or it cannot be made) a fresh one."""
    path = os.path.join(tempfile.gettempdir(), f"clmbot-matplotlib-{os.getuid()}")
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return tempfile.mkdtemp(prefix="clmbot-matplotlib-")
    info = os.lstat(path)
    if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and info.st_mode & 0o077 == 0:
        return path
    return tempfile.mkdtemp(prefix="clmbot-matplotlib-")
