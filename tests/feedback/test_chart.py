"""The trend chart: a real PNG of the size Slack previews, even with nothing to draw."""

import os
import subprocess
import sys
from datetime import UTC, date, datetime
from io import BytesIO

from clmbot.feedback.chart import DPI, HEIGHT_PX, WIDTH_PX, trend_png
from clmbot.feedback.months import months
from clmbot.feedback.reports import FeedbackReport, MonthScore
from clmbot.feedback.scores import csat, nps

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
SINCE = datetime(2025, 11, 24, 12, tzinfo=UTC)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def a_report(kind, counts):
    """A report whose months have these (good, middle, bad) counts; None: no answers."""
    spans = months(SINCE, NOW, UTC)
    trend = []
    for span, c in zip(spans, counts, strict=True):
        c = c or (0, 0, 0)
        result = nps(*c) if kind == "nps" else csat(c[0], c[1] + c[2])
        trend.append(MonthScore(span.month, span.start, span.end, result))
    total = [sum(c or (0,)) for c in counts]
    current = nps(5, 3, 2) if kind == "nps" else csat(8, 2)
    if not any(total):
        current = nps(0, 0, 0) if kind == "nps" else csat(0, 0)
    return FeedbackReport(kind, SINCE, NOW, current, sum(total), current.n, tuple(trend))


def decoded(png):
    from matplotlib.image import imread

    assert png.startswith(PNG_SIGNATURE)
    image = imread(BytesIO(png), format="png")
    assert image.shape[:2] == (HEIGHT_PX, WIDTH_PX)
    return image


def test_a_trend_with_gaps_is_a_png_of_the_preview_size():
    counts = [(3, 1, 1), (9, 5, 6), None, (1, 0, 0), None, (20, 5, 2)] + [(4, 4, 4)] * 7
    png = trend_png(a_report("nps", counts), title="NPS by month, plan:pro")
    decoded(png)
    assert (WIDTH_PX, HEIGHT_PX, DPI) == (800, 450, 100)


def test_csat():
    png = trend_png(a_report("csat", [(8, 1, 1)] * 13), title="CSAT by month")
    decoded(png)


def test_no_answers_still_draws():
    png = trend_png(a_report("nps", [None] * 13), title="NPS by month")
    image = decoded(png)
    assert image.std() > 0  # not a blank image: axes and the "no answers" note


def test_a_single_month():
    report = a_report("nps", [(1, 0, 0)] * 13)
    one = FeedbackReport("nps", SINCE, NOW, report.current, 1, 1, report.trend[-1:])
    assert one.trend[0].month == date(2026, 11, 1)
    decoded(trend_png(one, title="NPS"))


def test_a_read_only_home_does_not_stop_it(tmp_path):
    """A server whose HOME cannot be written still draws (a fresh process, so that
    matplotlib is imported there for the first time), in a directory of its own, without a
    warning. HOME is a file: nothing can be made under it, even by root."""
    home = tmp_path / "home"
    home.write_text("not a directory")
    env = {k: v for k, v in os.environ.items() if k != "MPLCONFIGDIR"}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home), XDG_CACHE_HOME=str(home))
    code = (
        "import sys, warnings\n"
        "warnings.simplefilter('error')\n"
        "sys.path.insert(0, '.')\n"
        "from tests.feedback.test_chart import a_report\n"
        "from clmbot.feedback.chart import trend_png\n"
        "assert 'matplotlib' not in sys.modules\n"
        "png = trend_png(a_report('nps', [(1, 2, 3)] * 13), title='t')\n"
        "assert png.startswith(b'\\x89PNG')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    # matplotlib alone would get by with a warning and a font cache rebuilt on every start
    assert "temporary cache directory" not in done.stderr
