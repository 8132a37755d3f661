"""The App Home tab: a dashboard for the person who opened it.

Read top to bottom as a retention lead's morning: my customers drifting toward churn (the
only personal part: the tab is private to its viewer), then the team's NPS and CSAT, the
funnel, the surveys in flight, and what to type for more. Each part says where its numbers
come from and which command goes further; numbers read as they do in the commands' answers
(`clmbot.plain`'s helpers, the same bars).

A Home tab holds at most 100 blocks: every part here has a fixed most (a few customers, a
few survey runs), about 35 in all, and `home_blocks` checks the sum.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo

from clmbot import plain
from clmbot.dashboard import (
    RISK_SHOWN,
    SCORE_PERIOD,
    Dashboard,
    FunnelGlance,
    MyRisk,
    RiskLine,
    ScoreCard,
    SurveysInFlight,
)
from clmbot.results import SurveyStatusResult
from clmbot.slack.views.base import (
    Block,
    Where,
    clip,
    context,
    esc,
    fields,
    header,
    section,
    sections,
)
from clmbot.slack.views.funnel import bar
from clmbot.slack.views.survey import status_blocks

MOST_BLOCKS = 100  # Slack's cap for a Home tab
REASONS_SHOWN = 2  # per customer at risk; their card and `/clm at-risk` have them all
DIVIDER: Block = {"type": "divider"}
SURVEY_USAGE = "survey nps <customer | segment | filters>"


def home_blocks(board: Dashboard, where: Where) -> list[Block]:
    blocks = [
        *risk_blocks(board.risk, where),
        DIVIDER,
        *score_blocks(board.scores, where),
        DIVIDER,
        *funnel_blocks(board.funnel, where),
        DIVIDER,
        *survey_blocks(board.surveys, where),
        DIVIDER,
        *footer_blocks(board.now, where),
    ]
    if len(blocks) > MOST_BLOCKS:  # a part grew past its most: a bug, not a thing to cut
        raise ValueError(f"the Home tab came to {len(blocks)} blocks, over {MOST_BLOCKS}")
    return blocks


def apology_blocks(error_id: str) -> list[Block]:
    return [
        section(
            ":warning: Sorry, this tab could not be built just now. Reopen it in a moment; "
            f"if it happens again, an admin can find error id `{error_id}` in the bot's log."
        )
    ]


def database_down_blocks(error_id: str) -> list[Block]:
    return [
        section(
            ":hourglass: The database is not answering just now, so this tab could not be "
            "built. Reopen it in a minute; if it keeps happening, tell an admin: error id "
            f"`{error_id}`."
        )
    ]


# --- my customers at risk ---------------------------------------------------------------------


def risk_blocks(risk: MyRisk, where: Where) -> list[Block]:
    blocks: list[Block] = [header("Your customers at risk")]
    owned = plain.plural(risk.owned, "customer")
    if risk.day is None:
        blocks.append(
            section(
                "No risk pass has been stored yet, so nobody is flagged. The bot scores every "
                "customer each morning at its alert time (`CLMBOT_ALERT_TIME`, 09:00 unless "
                "set) and this list fills in then; an admin can run it now with `clmbot alerts "
                "run`."
            )
        )
        return blocks
    age = (where.now.astimezone(where.zone).date() - risk.day).days
    when = f"the pass of {_day(risk.day)}"
    if age > 1:  # the morning job has not run for a while: say so, or the list looks current
        when = (
            f"the pass of {risk.day:%a %d %b %Y}, {age} days ago (is the bot's morning job "
            "running?)"
        )
    if risk.owned == 0:
        blocks.append(
            section(
                "You own no customers: a customer is yours when the `owner_slack_id` of their "
                f"import is your Slack member ID. The team's at-risk list is "
                f"`{where.prefix}at-risk`."
            )
        )
        return blocks
    if risk.total == 0:
        blocks.append(
            section(
                f":white_check_mark: None of your {owned} is at risk ({risk.threshold} or "
                f"more) in {when}."
            )
        )
        return blocks
    money = where.display.money
    blocks.append(
        section(
            f"*{risk.total:,} of your {owned}* {'is' if risk.total == 1 else 'are'} at risk "
            f"({risk.threshold} or more) in {when}, "
            + (f"holding MRR *{esc(money(risk.mrr))}*. " if risk.mrr else "with no MRR on record. ")
            + "Highest first:"
        )
    )
    blocks += [_risk_line(line, risk, where) for line in risk.lines[:RISK_SHOWN]]
    rest = risk.total - len(risk.lines)
    more = f"{rest:,} more at risk. " if rest > 0 else ""
    blocks.append(
        context(
            f"{more}`{where.prefix}at-risk owner:@me` lists them all with every reason and a "
            "button to open each card."
        )
    )
    return blocks


def _risk_line(line: RiskLine, risk: MyRisk, where: Where) -> Block:
    """As the digest shows a customer: name, risk and how it moved, MRR, the main reasons."""
    change = ""
    if risk.previous_day is not None:
        since = f"since {_day(risk.previous_day)}"
        if line.change is None:
            change = f" (new {since})"
        elif line.change:
            change = f" ({line.change:+d} {since})"
    mrr = esc(where.display.money(line.mrr)) if line.mrr is not None else "—"
    reasons = "\n".join(f"• {esc(clip(r, 200))}" for r in line.reasons[:REASONS_SHOWN])
    hidden = len(line.reasons) - REASONS_SHOWN
    if hidden > 0:
        reasons += f"\n• _and {hidden} more_"
    return section(
        f"*{esc(clip(line.name, 100))}* `{esc(clip(line.external_id, 60))}` · risk "
        f"*{line.risk}*{change} · MRR {mrr}\n{reasons or '_no single reason stands out_'}"
    )


# --- NPS and CSAT -----------------------------------------------------------------------------


def score_blocks(cards: tuple[ScoreCard, ...], where: Where) -> list[Block]:
    days = SCORE_PERIOD.days
    blocks: list[Block] = [header("NPS and CSAT, the whole team")]
    if not any(c.previous.n or any(m.n for m in c.trend) for c in cards):
        blocks.append(
            section(
                f"No NPS or CSAT answers in the last {len(cards[0].trend) if cards else 0} "
                f"months. An admin imports them (`clmbot import feedback FILE.csv`), or asks "
                f"customers by DM with `{esc(where.prefix + SURVEY_USAGE)}`."
            )
        )
        return blocks
    blocks += [
        fields([(c.kind.upper(), _headline(c)) for c in cards]),
        fields([(f"{c.kind.upper()} by month", _trend(c)) for c in cards]),
    ]
    since = cards[0].since
    blocks.append(
        context(
            f"Each customer's latest answer in the last {days} days (since "
            f"{_day(since.astimezone(where.zone).date())}), against the {days} days before; by "
            f"month, every answer, in brackets how many. `{where.prefix}nps` and "
            f"`{where.prefix}csat` go further (`by plan`, `since 2y`); "
            f"`{where.prefix}feedback detractors` has the comments."
        )
    )
    return blocks


def _headline(card: ScoreCard) -> str:
    kind, cur = card.kind, card.current
    if not cur.n:
        return f"no answers in the last {SCORE_PERIOD.days} days"
    lines = [
        f"*{plain.score_value(kind, cur.score)}*  (95%: {plain.interval(kind, cur.low, cur.high)})"
    ]
    change = card.change
    if change is None:
        lines.append(f"no answers the {SCORE_PERIOD.days} days before")
    else:
        arrow = (
            ":arrow_up_small:" if change > 0.5 else ":arrow_down_small:" if change < -0.5 else "="
        )
        previous = plain.score_value(kind, card.previous.score)
        lines.append(
            f"{arrow} {change:+.0f} points vs the {SCORE_PERIOD.days} days before ({previous})"
        )
    lines.append(f"{plain.plural(cur.n, 'customer')} answered")
    return "\n".join(lines)


def _share(kind: str, score: float | None) -> float | None:
    """A score as a 0..1 share of its scale, for a bar (as the NPS and CSAT answers draw it)."""
    if score is None:
        return None
    return (score + 100) / 200 if kind == "nps" else score / 100


def _trend(card: ScoreCard) -> str:
    kind = card.kind
    if not any(m.n for m in card.trend):
        return f"no answers since {card.trend[0].month:%B}" if card.trend else "no answers"
    return "\n".join(
        f"`{m.month:%b}` `{bar(_share(kind, m.score))}` "
        + (f"*{plain.score_value(kind, m.score)}* ({m.n:,})" if m.n else "no answers")
        for m in card.trend
    )


# --- the funnel -------------------------------------------------------------------------------


def funnel_blocks(f: FunnelGlance, where: Where) -> list[Block]:
    days = round((f.now - f.since).total_seconds() / 86400)
    total = f.total
    if not total:
        return [
            header("Funnel"),
            section(
                "No customers yet. An admin imports them from the CRM: `clmbot import "
                "customers FILE.csv` (and their `stages`, `events` and `feedback`)."
            ),
        ]
    cells = [
        (
            esc(s.stage),
            f"{s.customers:,}  ({plain.percent(s.customers / total if total else None)})",
        )
        for s in f.stages
    ]
    blocks: list[Block] = [header("Funnel")]
    when = plain.counted_at(f, where.zone)
    if when:
        blocks.append(context(f":hourglass_flowing_sand: {esc(when)}"))
    blocks += [fields(cells[i : i + 10]) for i in range(0, len(cells), 10)]
    if f.steps:
        lines = [
            f"`{bar(s.rate)}` *{plain.percent(s.rate)}* {esc(s.from_stage)} → "
            f"{esc(s.to_stage)} ({s.converted:,} of {s.base:,})"
            for s in f.steps
        ]
        blocks += sections(f"*Conversion, last {days} days*", lines)
    blocks.append(
        context(
            f"{total:,} customers now. Conversion: of the customers in a stage during the last "
            f"{days} days, the share who reached the next stage or a later one by now. "
            f"`{where.prefix}funnel` adds how long stays last; `{where.prefix}funnel since 30d` "
            "another period."
        )
    )
    return blocks


# --- surveys ----------------------------------------------------------------------------------


def survey_blocks(s: SurveysInFlight, where: Where) -> list[Block]:
    blocks: list[Block] = [header("Surveys in flight")]
    if not s.total_runs:
        blocks.append(
            section(
                f"No surveys yet. An admin queues them with `{esc(where.prefix + SURVEY_USAGE)}`: "
                "each goes out by DM in the customer's own hours and language."
            )
        )
        return blocks
    if s.queued or s.waiting:
        blocks.append(
            section(
                f"*{s.queued:,}* queued to go out (each in their customer's hours) · "
                f"*{s.waiting:,}* delivered and waiting for an answer"
            )
        )
    else:
        blocks.append(section("Nothing in flight: no survey waits to go out, nor for an answer."))
    # `/clm survey status`'s own view of the latest runs, under this tab's header.
    runs = status_blocks(SurveyStatusResult(list(s.runs), s.total_runs), where)
    blocks += [b for b in runs if b.get("type") != "header"]
    return blocks


# --- the footer -------------------------------------------------------------------------------


def footer_blocks(now: datetime, where: Where) -> list[Block]:
    tries = (
        "at-risk owner:@me",
        "customer Acme",
        "nps owner:@me",
        "segment owner:@me stage:retention",
        "feedback detractors",
        "funnel since 30d",
    )
    return [
        context(
            "*Try* "
            + " · ".join(f"`{esc(where.prefix + t)}`" for t in tries)
            + " — or write the same words to me in Messages."
        ),
        context(
            f":arrows_counterclockwise: Updated {_time(now, where.zone)}; reopen the tab to "
            "refresh."
        ),
    ]


def _day(day: date) -> str:
    """`Tue 24 Nov`: a day of the last few weeks, as people say it."""
    return f"{day:%a} {day.day} {day:%b}"


def _time(at: datetime, zone: tzinfo) -> str:
    local = at.astimezone(zone)
    return f"{local:%H:%M} {local.tzname() or ''}".rstrip() + f" on {_day(local.date())}"
