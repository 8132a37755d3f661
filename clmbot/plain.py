"""Every result as plain text: what the CLI prints, what the console demo will print, and
Slack's fallback text (notifications, screen readers).

Good to read on its own: aligned columns, no Slack markup (a `code` span becomes 'code', a
mention `<@U1>` becomes @U1). `render` is the one entry point; the helpers below it are
shared by the Slack views so that numbers read the same everywhere.
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

from clmbot.config import DisplayConfig
from clmbot.feedback.reports import SMALL_GROUP
from clmbot.feedback.scores import NpsScore, Score
from clmbot.results import (
    AtRiskResult,
    AuditLine,
    AuditResult,
    ChartResult,
    FeedbackReport,
    FeedbackResult,
    ForgetConfirmResult,
    ForgottenResult,
    Funnel,
    FunnelChartResult,
    FunnelResult,
    GreetingResult,
    HelpResult,
    MatchesResult,
    NoMatchResult,
    NotYetResult,
    Profile,
    ProfileResult,
    RefusedResult,
    Result,
    ScoreByResult,
    ScoreResult,
    SegmentDeletedResult,
    SegmentExportResult,
    SegmentListResult,
    SegmentResult,
    SegmentSavedResult,
    StageMove,
    StageResult,
    SurveyConfirmResult,
    SurveyQueuedResult,
    SurveyStatusResult,
    UsageResult,
)
from clmbot.surveys.queue import SKIP_REASONS

if TYPE_CHECKING:  # the Home tab's glance; clmbot.dashboard imports far more than this needs
    from clmbot.dashboard import FunnelGlance

# What commands are typed after, where the text will be read.
IN_TERMINAL = "clmbot "
IN_CHANNEL = "/clm "
IN_DM = ""


def render(
    result: Result,
    zone: tzinfo,
    *,
    prefix: str = IN_TERMINAL,
    display: DisplayConfig | None = None,
    brief: bool = False,
) -> str:
    """`prefix`: what commands are typed after where the text is read. `brief`: the short
    form of a long answer (a card's first lines), for a notification."""
    display = display or DisplayConfig()
    match result:
        case HelpResult():
            return help_text(result, prefix)
        case GreetingResult():
            examples = " or ".join(f"'{prefix}{s.example}'" for s in result.examples)
            return (
                f"Hello! Ask me about customers with the same words as after /clm, e.g. "
                f"{examples}. '{prefix}help' lists everything."
            )
        case UsageResult():
            return (
                f"{unmark(result.problem)}\nUsage: {prefix}{result.spec.usage}\n"
                f"Example: {prefix}{result.spec.example}"
            )
        case NotYetResult():
            return (
                f"{prefix}{result.command} is not available yet in this clmbot; "
                f"'{prefix}help' lists what is."
            )
        case RefusedResult():
            return unmark(result.message)
        case MatchesResult():
            return matches_text(result, prefix)
        case NoMatchResult():
            closest = (
                f"; closest names: {', '.join(result.closest)}"
                if result.closest
                else "; no name is close either"
            )
            return (
                f"No customer matches '{result.ref}'{closest}. "
                "Use an external id, an e-mail or a name."
            )
        case ProfileResult():
            return profile_text(result.profile, zone, display, full=not brief)
        case StageResult():
            return move_text(result.move, result.customer.name)
        case FunnelResult():
            return funnel_text(result.funnel, zone)
        case FunnelChartResult():
            return funnel_chart_text(result, zone)
        case AuditResult():
            return audit_text(result.entries, result.since, result.until, zone, result.limit)
        case SegmentResult():
            return segment_text(result, display, prefix)
        case SegmentSavedResult():
            seg = result.segment
            verb = "replaced" if result.replaced else "saved"
            return (
                f"Segment '{seg.name}' {verb}: {seg.expression}"
                + (f" ({seg.count:,} customers now). " if seg.count is not None else ". ")
                + f"Use it as '{prefix}segment {seg.name}', or in nps, csat and feedback."
            )
        case SegmentDeletedResult():
            return f"Segment '{result.name}' deleted."
        case SegmentListResult():
            return segments_text(result, prefix)
        case ScoreResult():
            return score_text(result.report, result.of, zone)
        case ScoreByResult():
            return score_by_text(result)
        case ChartResult():
            return (
                f"{result.file.title}: the trend of {result.report.respondents:,} customers' "
                f"answers, in {result.file.filename}."
            )
        case FeedbackResult():
            return feedback_text(result, zone, prefix)
        case SegmentExportResult():
            return f"{result.file.title}: {result.count:,} customers, in {result.file.filename}."
        case SurveyQueuedResult():
            return survey_queued_text(result, zone)
        case SurveyConfirmResult():
            return (
                f"This would ask {result.eligible:,} customers for their {result.kind.upper()} "
                f"({result.target}){skipped_text(result.skipped, '; ')}. To queue them: "
                f"{prefix}{result.confirm}"
            )
        case SurveyStatusResult():
            return survey_status_text(result, zone)
        case ForgetConfirmResult():
            c = result.customer
            return (
                f"This would erase the personal data of {c.name} ({c.external_id}) for good: "
                "name, e-mail, Slack id, tags, attributes, comments and survey replies. Their "
                "scores, events and stage history stay, anonymous. To go ahead: "
                f"{prefix}{result.confirm}"
            )
        case ForgottenResult():
            return (
                f"Forgotten: {result.external_id}'s name, e-mail, Slack id, tags and attributes "
                f"are erased, with {plural(result.comments, 'comment')}, "
                f"{plural(result.survey_replies, 'survey comment')}, "
                f"{plural(result.stage_reasons, 'reason')} given for their stage moves and "
                f"the values in {result.audit_entries:,} "
                f"{'entry' if result.audit_entries == 1 else 'entries'} of the audit log. An "
                "import of an old file leaves them out, and says so."
            )
        case AtRiskResult():
            return at_risk_text(result, display, prefix)
    raise TypeError(f"no plain rendering for {type(result).__name__}")


_CODE = re.compile(r"`([^`]*)`")
_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")


def unmark(markdown: str) -> str:
    """Slack markup out of a message written for Slack: `x` → 'x', <@U1> → @U1, no *bold*."""
    text = _CODE.sub(r"'\1'", markdown)
    text = _MENTION.sub(r"@\1", text)
    return text.replace("*", "")


def help_text(result: HelpResult, prefix: str) -> str:
    lines = [unmark(result.note), ""] if result.note else []
    lines.append("clmbot: the customer lifecycle, from Slack")
    lines.append("")
    for spec in result.commands:
        admin = " (admins)" if spec.admin_only else ""
        lines.append(f"{prefix}{spec.usage}{admin}")
        lines.append(f"    {spec.summary}")
        lines.append(f"    e.g. {prefix}{spec.example}")
    lines.append("")
    lines.append(
        "A customer is its external id, its e-mail, or the start of its name "
        '("quotes" for names with spaces when a stage follows).'
    )
    if result.planned:
        lines.append("Coming later: " + ", ".join(result.planned) + ".")
    return "\n".join(lines)


def matches_text(result: MatchesResult, prefix: str) -> str:
    count = f"{len(result.matches)}+" if result.more else str(len(result.matches))
    listed = "; ".join(f"{c.name} ({c.external_id})" for c in result.matches)
    more = "; ..." if result.more else ""
    words = (result.command, result.matches[0].external_id, *result.rest)
    example = prefix + " ".join(f'"{w}"' if any(c.isspace() for c in w) else w for w in words)
    return (
        f"{count} customers match “{result.ref}”: {listed}{more}. To be exact, use the "
        f"external id or the e-mail, e.g. {example}"
    )


def day(at: datetime, zone: tzinfo) -> str:
    return at.astimezone(zone).strftime("%Y-%m-%d")


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.0f}%"


def period_days(since: datetime, now: datetime) -> int:
    """How many days a period spans, as people count them (90, not 89.96)."""
    return round((now - since).total_seconds() / 86400)


def counted_at(result: Funnel | FunnelGlance, zone: tzinfo) -> str | None:
    """What to say of a funnel counted before it was asked for (see `Funnel.counted_at`)."""
    if result.counted_at is None:
        return None
    at = result.counted_at.astimezone(zone).strftime("%H:%M:%S")
    return (
        f"Counted at {at}: stage moves made since are not in it yet (the history changes "
        "faster than a funnel this large can be counted; ask again in a minute or two)."
    )


def funnel_text(result: Funnel, zone: tzinfo) -> str:
    days = period_days(result.since, result.now)
    when = counted_at(result, zone)
    lines = [
        f"Funnel on {day(result.now, zone)}: {result.total:,} customers. "
        f"Period {day(result.since, zone)} to {day(result.now, zone)} ({days} days).",
        *([when] if when else []),
        "",
        f"{'stage':<16}{'now':>9}{'entered':>9}   median days in stage",
    ]
    for s in result.stages:
        median = "—" if s.median_days is None else f"{s.median_days:.1f} (of {s.stays:,})"
        lines.append(f"{s.stage:<16}{s.customers:>9,}{s.entered:>9,}   {median}")
    if result.conversions:
        lines += ["", "conversion in the period (to the next stage or further)"]
        width = max(len(c.from_stage) + len(c.to_stage) for c in result.conversions) + 4
        for c in result.conversions:
            label = f"{c.from_stage} → {c.to_stage}"
            lines.append(f"{label:<{width}}{percent(c.rate):>5}  ({c.converted:,} of {c.base:,})")
    return "\n".join(lines)


def funnel_chart_text(result: FunnelChartResult, zone: tzinfo) -> str:
    """What goes with the picture: what it shows, and where it is (a file name, or the
    channel's upload of that name)."""
    f = result.funnel
    return (
        f"{result.file.title}: {plural(f.total, 'customer')} by stage on {day(f.now, zone)}, "
        f"with the conversion between stages since {day(f.since, zone)} "
        f"({period_days(f.since, f.now)} days), in {result.file.filename}."
    )


def move_text(move: StageMove, name: str) -> str:
    if not move.changed:
        return f"{name} is already in {move.to_stage}; nothing changed."
    why = f" ({move.reason})" if move.reason else ""
    return f"{name} moved from {move.from_stage} to {move.to_stage}{why}."


def profile_text(
    profile: Profile, zone: tzinfo, display: DisplayConfig | None = None, *, full: bool = False
) -> str:
    """The card as text: short (a notification's fallback) or `full` (the terminal)."""
    c = profile.customer
    shown = mrr(profile, display or DisplayConfig())
    if not full:
        lines = [f"{c.name} ({c.external_id})", f"stage: {c.stage}{stage_since(profile, zone)}"]
        lines.append(f"owner: {c.owner_slack_id or '—'}; plan: {c.plan or '—'}; MRR: {shown}")
        if profile.last_activity:
            lines.append(
                f"last activity: {profile.last_activity.kind} on "
                f"{day(profile.last_activity.at, zone)}"
            )
        for label, answer in (("NPS", profile.latest_nps), ("CSAT", profile.latest_csat)):
            if answer is not None:
                lines.append(f"latest {label}: {answer.score} on {day(answer.responded_at, zone)}")
        return "\n".join(lines)
    last = profile.last_activity
    pairs = [
        ("external id", c.external_id),
        ("e-mail", c.email or "—"),
        ("stage", f"{c.stage}{stage_since(profile, zone)}"),
        ("owner", c.owner_slack_id or "—"),
        ("plan", c.plan or "—"),
        ("MRR", shown),
        ("customer since", c.signup_date.isoformat() if c.signup_date else "—"),
        ("tags", ", ".join(c.tags) if c.tags else "—"),
        ("last activity", f"{last.kind} on {day(last.at, zone)}" if last else "none recorded"),
        ("events, 30 days", str(profile.events_last_30_days)),
    ]
    for label, answer in (
        ("NPS, latest", profile.latest_nps),
        ("CSAT, latest", profile.latest_csat),
    ):
        value = "—"
        if answer is not None:
            value = f"{answer.score} on {day(answer.responded_at, zone)}"
            if answer.comment:
                value += f": “{answer.comment}”"
        pairs.append((label, value))
    if profile.risk is not None:
        reasons = "; ".join(profile.risk_reasons)
        pairs.append(("churn risk", f"{profile.risk}/100" + (f": {reasons}" if reasons else "")))
    width = max(len(k) for k, _ in pairs) + 2
    lines = [c.name, "", *(f"{k + ':':<{width}}{v}" for k, v in pairs)]
    if profile.history:
        lines += ["", "stage history (newest first)"]
        for h in profile.history:
            move = f"{h.from_stage} → {h.to_stage}" if h.from_stage else f"started in {h.to_stage}"
            why = f": {h.reason}" if h.reason else ""
            lines.append(f"  {day(h.at, zone)}  {move}, by {h.by}{why}")
        hidden = profile.history_total - len(profile.history)
        if hidden > 0:
            lines.append(f"  … and {hidden} earlier moves")
    return "\n".join(lines)


def audit_text(
    entries: list[AuditLine], since: datetime, until: datetime, zone: tzinfo, limit: int
) -> str:
    """The audit log as a table, newest first."""
    head = f"Changes from {day(since, zone)} to {day(until, zone)}"
    if not entries:
        return head + ": none."
    rows = [
        (
            e.at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
            e.actor,
            e.action,
            e.channel or "—",
            e.customer or "—",
            _detail(e),
        )
        for e in entries
    ]
    titles = ("when", "who", "what", "where", "customer", "")
    widths = [max(len(r[i]) for r in [titles, *rows]) for i in range(5)]
    lines = [
        f"{head}: {len(entries)}" + (f" (the latest {limit})" if len(entries) == limit else "")
    ]
    lines.append("")
    for r in [titles, *rows]:
        lines.append("  ".join(f"{r[i]:<{widths[i]}}" for i in range(5)) + f"  {r[5]}".rstrip())
    return "\n".join(lines)


def _detail(entry: AuditLine) -> str:
    d = entry.detail
    if entry.action == "import" and "file" in d:
        return (
            f"{d['kind']} from {d['file']}: {d['rows']} rows, {d['inserted']} inserted, "
            f"{d['updated']} updated, {d['rejected']} rejected"
        )
    if entry.action == "stage" and "to_stage" in d:
        why = f" ({d['reason']})" if d.get("reason") else ""
        return f"{d.get('from_stage', '?')} → {d['to_stage']}{why}"
    return ", ".join(f"{k}={v}" for k, v in sorted(d.items()))


def stage_since(profile: Profile, zone: tzinfo) -> str:
    """ " since 2025-07-05", or, when only an import knows the stage, that it does not know."""
    if profile.stage_since:
        return f" since {day(profile.stage_since, zone)}"
    if profile.stage_found_at:
        return f", since before {day(profile.stage_found_at, zone)} (the import that found it)"
    return ""


def money(amount: float | None, display: DisplayConfig | None = None) -> str:
    if amount is None:
        return "—"
    return (display or DisplayConfig()).money(amount)


def mrr(profile: Profile, display: DisplayConfig) -> str:
    """A churned customer pays nothing now: their MRR reads as what it was."""
    amount = money(profile.customer.mrr, display)
    if profile.ended and profile.customer.mrr is not None:
        return f"{amount} before {profile.customer.stage}"
    return amount


def plural(count: int, word: str) -> str:
    """`1 customer`, `2,000 customers`."""
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def table(rows: list[tuple[str, ...]], right: frozenset[int] = frozenset()) -> list[str]:
    """Rows as aligned columns (the first row is the titles); columns in `right` are
    numbers, aligned right."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        cells = [
            f"{cell:>{widths[i]}}" if i in right else f"{cell:<{widths[i]}}"
            for i, cell in enumerate(r)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def segment_text(result: SegmentResult, display: DisplayConfig, prefix: str) -> str:
    s = result.summary
    head = f"Segment {result.expression}"
    if result.canonical != result.expression:
        head += f" ({result.canonical})"
    lines = [f"{head}: {plural(s.count, 'customer')}, MRR {money(s.mrr, display)}."]
    if s.churned_mrr:
        lines[0] += f" (and {money(s.churned_mrr, display)} that churned customers paid)"
    if not s.count:
        return lines[0] + " Loosen a filter, or check a value with 'customer <name>'."
    lines += [
        "",
        *table([("stage", "customers"), *((st, f"{n:,}") for st, n in s.by_stage)], frozenset({1})),
    ]
    lines += [
        "",
        f"the first {len(s.sample)} (live customers first, by MRR)"
        if s.count > len(s.sample)
        else "the customers",
    ]
    rows = [("name", "external id", "stage", "plan", "MRR", "owner")]
    rows += [
        (
            c.name,
            c.external_id,
            c.stage,
            c.plan or "—",
            money(c.mrr, display),
            f"@{c.owner_slack_id}" if c.owner_slack_id else "—",
        )
        for c in s.sample
    ]
    lines += table(rows, frozenset({4}))
    if s.count > len(s.sample):
        lines += [
            "",
            f"{s.count - len(s.sample):,} more: '{prefix}segment {result.expression} export' "
            "gives all of them as CSV.",
        ]
    return "\n".join(lines)


def segments_text(result: SegmentListResult, prefix: str) -> str:
    if not result.segments:
        return (
            f"No saved segments yet. Save one with '{prefix}segment save <name> <filters>', "
            f"e.g. '{prefix}segment save vip plan:pro mrr>500'."
        )
    rows = [("name", "customers", "filters")]
    for seg in result.segments:
        shown = f"{seg.count:,}" if seg.count is not None else "—"
        rows.append(
            (
                seg.name,
                shown,
                seg.expression + (f"  (cannot run: {seg.problem})" if seg.problem else ""),
            )
        )
    return "\n".join(
        [
            f"{len(result.segments)} saved segment{'s' if len(result.segments) != 1 else ''}",
            "",
            *table(rows, frozenset({1})),
        ]
    )


def score_value(kind: str, score: float | None) -> str:
    """An NPS as a signed whole number (+32), a CSAT as a percentage (81%); — for none."""
    if score is None:
        return "—"
    return f"{score:+.0f}" if kind == "nps" else f"{score:.0f}%"


def interval(kind: str, low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return ""
    if kind == "nps":
        return f"{low:+.0f} to {high:+.0f}"
    return f"{low:.0f}% to {high:.0f}%"


def counts(result: Score) -> str:
    """Promoters, passives, detractors (NPS) or satisfied and not (CSAT), as words."""
    if isinstance(result, NpsScore):
        return (
            f"{result.promoters:,} promoters, {result.passives:,} passives, "
            f"{result.detractors:,} detractors"
        )
    return f"{result.satisfied:,} satisfied (4-5), {result.unsatisfied:,} not (1-3)"


def period_text(since: datetime, now: datetime, zone: tzinfo) -> str:
    return f"{day(since, zone)} to {day(now, zone)}"


def score_text(report: FeedbackReport, of: str | None, zone: tzinfo) -> str:
    kind, cur = report.kind, report.current
    name = kind.upper()
    who = f" of {of}" if of else ""
    head = f"{name}{who}, {period_text(report.since, report.now, zone)}"
    if not cur.n:
        return f"{head}: no answers. Widen the period ('since 2y') or the filters."
    lines = [
        f"{head}: {score_value(kind, cur.score)} "
        f"(95% interval {interval(kind, cur.low, cur.high)})",
        f"{counts(cur)}; each customer's latest answer, {report.respondents:,} customers "
        f"({report.responses:,} answers in all)",
        "",
    ]
    rows = [("month", name, "95% interval", "answers")]
    for m in report.trend:
        rows.append(
            (
                m.month.strftime("%Y-%m"),
                score_value(kind, m.score),
                interval(kind, m.result.low, m.result.high),
                f"{m.n:,}",
            )
        )
    lines += table(rows, frozenset({1, 3}))
    return "\n".join(lines)


def score_by_text(result: ScoreByResult) -> str:
    r = result.report
    kind, name = r.kind, r.kind.upper()
    who = f" of {result.of}" if result.of else ""
    head = f"{name}{who} by {r.group}: {score_value(kind, r.overall.score)} overall"
    if not r.overall.n:
        return f"{name}{who} by {r.group}: no answers in the period."
    rows = [(r.group, name, "95% interval", "customers", "")]
    for line in r.lines:
        label = line.value or "none"
        if r.group == "owner" and line.value:
            label = "@" + line.value
        rows.append(
            (
                label,
                score_value(kind, line.score),
                interval(kind, line.result.low, line.result.high),
                f"{line.n:,}",
                "too few to mean much" if line.small else "",
            )
        )
    note = f"Each customer's latest answer; groups under {SMALL_GROUP} customers are marked."
    return "\n".join([head, "", *table(rows, frozenset({1, 3})), "", note])


def feedback_text(result: FeedbackResult, zone: tzinfo, prefix: str) -> str:
    page = result.page
    who = f" from {result.of}" if result.of else ""
    head = f"Comments{who}, {period_text(result.since, result.now, zone)}"
    if not page.items:
        return f"{head}: none." + (" (That was the last page.)" if page.offset else "")
    total = f"{page.total:,}{'+' if page.total_capped else ''}"
    order = "detractors first, newest first" if result.detractors_first else "newest first"
    lines = [
        f"{head}: {page.offset + 1}-{page.offset + len(page.items)} of {total} ({order})",
        "",
    ]
    for c in page.items:
        mark = " (detractor)" if c.is_detractor else ""
        lines.append(
            f"{day(c.responded_at, zone)}  {c.kind.upper()} {c.score}{mark}  "
            f"{c.name} ({c.external_id})"
        )
        lines.append(f"    “{c.comment}”")
    if result.more:
        lines += ["", f"More: '{prefix}{result.more}'"]
    return "\n".join(lines)


def skipped_text(skipped: tuple[tuple[str, int], ...], lead: str = " ") -> str:
    """ "; 8 skipped: 5 answered or surveyed within the cooldown, 3 no Slack user"."""
    if not skipped:
        return ""
    total = sum(n for _, n in skipped)
    parts = ", ".join(f"{n:,} {SKIP_REASONS.get(key, key)}" for key, n in skipped)
    return f"{lead}{total:,} skipped: {parts}"


def when(at: datetime, zone: tzinfo) -> str:
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def survey_queued_text(result: SurveyQueuedResult, zone: tzinfo) -> str:
    kind = result.kind.upper()
    if result.queued == 0:
        if not result.skipped:
            return f"No customer matches {result.target}: no {kind} survey queued."
        return f"No {kind} survey queued for {result.target}:{skipped_text(result.skipped)}."
    plural = "s" if result.queued != 1 else ""
    run = f"(run #{result.run_id})"
    lines = [f"Queued {result.queued:,} {kind} survey{plural} for {result.target} {run}."]
    now = result.queued - result.later
    timing = f"They go out by DM in each customer's hours ({result.window})"
    if result.later and now:
        timing += f": {now:,} now, {result.later:,} when their hours begin"
    elif result.later and result.first_send:
        timing += f": the first at {when(result.first_send, zone)}"
    else:
        timing += ": now"
    lines.append(timing + ".")
    if result.skipped:
        lines.append(skipped_text(result.skipped, "") + ".")
    return "\n".join(lines)


def survey_status_text(result: SurveyStatusResult, zone: tzinfo) -> str:
    if not result.runs:
        return "No surveys yet. Queue some with: survey nps <customer | segment | filters>."
    titles = ("run", "kind", "started", "queued", "sent", "answered", "expired", "rate", "for")
    rows = [
        (
            f"#{r.run_id}",
            r.kind.upper(),
            day(r.created_at, zone),
            f"{r.queued:,}",
            f"{r.sent:,}",
            f"{r.answered:,}",
            f"{r.expired:,}",
            percent(r.response_rate),
            r.target[:60],
        )
        for r in result.runs
    ]
    widths = [max(len(row[i]) for row in [titles, *rows]) for i in range(8)]
    right = {3, 4, 5, 6, 7}
    lines = [
        f"Survey runs, newest first ({len(result.runs)} of {result.total})"
        if result.total > len(result.runs)
        else "Survey runs, newest first",
        "",
    ]
    for row in [titles, *rows]:
        cells = [
            f"{row[i]:>{widths[i]}}" if i in right else f"{row[i]:<{widths[i]}}" for i in range(8)
        ]
        lines.append("  ".join(cells) + f"  {row[8]}")
    lines.append("")
    lines.append("sent: delivered, no answer yet; rate: answered of those delivered.")
    failed = sum(r.failed for r in result.runs)
    cancelled = sum(r.cancelled for r in result.runs)
    if failed or cancelled:
        lines.append(
            f"Not delivered: {failed:,} refused by Slack, {cancelled:,} cancelled (opted out "
            "or no longer to be asked)."
        )
    return "\n".join(lines)


def at_risk_text(result: AtRiskResult, display: DisplayConfig, prefix: str) -> str:
    page = result.page
    of = f" in {result.of}" if result.of else ""
    if page.day is None:
        return (
            "No risk pass is stored yet: the daily job stores one each morning, and "
            "'clmbot alerts run' stores one now."
        )
    if not page.rows:
        return f"No customer{of} at risk {result.threshold} or more in the pass of {page.day}."
    lines = [
        f"At risk{of}: {page.total:,} customers at {result.threshold} or more, "
        f"highest first (the pass of {page.day}; page {result.page_no})",
        "",
    ]
    for r in page.rows:
        owner = f" @{r.owner_slack_id}" if r.owner_slack_id else ""
        lines.append(f"{r.risk:>4}  {r.name} ({r.external_id})  MRR {money(r.mrr, display)}{owner}")
        lines.append("      " + ("; ".join(r.reasons) or "no single reason stands out"))
    if result.more:
        lines += ["", f"More: {prefix}{result.more}"]
    return "\n".join(lines)
