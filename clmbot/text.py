"""Results as plain text, for the terminal (CLI, console demo) and Slack's fallback text."""

from __future__ import annotations

from datetime import datetime, tzinfo

from clmbot.lifecycle import Funnel, StageMove
from clmbot.profile import Profile


def day(at: datetime, zone: tzinfo) -> str:
    return at.astimezone(zone).strftime("%Y-%m-%d")


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.0f}%"


def funnel_text(result: Funnel, zone: tzinfo) -> str:
    days = round((result.now - result.since).total_seconds() / 86400)
    lines = [
        f"Funnel on {day(result.now, zone)}: {result.total:,} customers. "
        f"Period {day(result.since, zone)} to {day(result.now, zone)} ({days} days).",
        "",
        f"{'stage':<16}{'now':>9}{'entered':>9}   median days in stage",
    ]
    for s in result.stages:
        median = "—" if s.median_days is None else f"{s.median_days:.1f} (of {s.stays})"
        lines.append(f"{s.stage:<16}{s.customers:>9,}{s.entered:>9,}   {median}")
    if result.conversions:
        lines += ["", "conversion in the period (to the next stage or further)"]
        width = max(len(c.from_stage) + len(c.to_stage) for c in result.conversions) + 4
        for c in result.conversions:
            label = f"{c.from_stage} → {c.to_stage}"
            lines.append(f"{label:<{width}}{percent(c.rate):>5}  ({c.converted:,} of {c.base:,})")
    return "\n".join(lines)


def move_text(move: StageMove, name: str) -> str:
    if not move.changed:
        return f"{name} is already in {move.to_stage}; nothing changed."
    why = f" ({move.reason})" if move.reason else ""
    return f"{name} moved from {move.from_stage} to {move.to_stage}{why}."


def profile_text(profile: Profile, zone: tzinfo) -> str:
    c = profile.customer
    lines = [f"{c.name} ({c.external_id})", f"stage: {c.stage}"]
    if profile.stage_since:
        lines[-1] += f" since {day(profile.stage_since, zone)}"
    lines.append(f"owner: {c.owner_slack_id or '—'}; plan: {c.plan or '—'}; MRR: {money(c.mrr)}")
    if profile.last_activity:
        lines.append(
            f"last activity: {profile.last_activity.kind} on {day(profile.last_activity.at, zone)}"
        )
    for label, answer in (("NPS", profile.latest_nps), ("CSAT", profile.latest_csat)):
        if answer is not None:
            lines.append(f"latest {label}: {answer.score} on {day(answer.responded_at, zone)}")
    return "\n".join(lines)


def money(amount: float | None) -> str:
    if amount is None:
        return "—"
    return f"{amount:,.2f}".removesuffix(".00")
