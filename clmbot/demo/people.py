"""Who is in the demo's workspace: a small customer team, someone who is not on it, a guest,
and the sample's customers (each with a Slack account of their own when the sample gave
them one).

The owners' ids are the sample business's (`clmbot.sample.business.OWNERS`), so that "my
customers" means something for each of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from clmbot.sample.business import OWNERS

TEAM_ID = "T0DEMO001"
BOT_USER = "U0CLMBOT1"
ALERT_CHANNEL = "C0ALERTS1"
FEEDBACK_CHANNEL = "C0VOICE01"
COMMAND_CHANNEL = "C0RETAIN1"  # where the team types /clm
CHANNEL_NAMES = {
    ALERT_CHANNEL: "customer-alerts",
    FEEDBACK_CHANNEL: "customer-voice",
    COMMAND_CHANNEL: "retention",
}


@dataclass(frozen=True)
class Person:
    name: str
    slack_id: str
    role: str  # what `:as` says about them
    on_team: bool = True
    admin: bool = False
    guest: bool = False


PEOPLE: tuple[Person, ...] = (
    Person("sari", OWNERS[0], "admin, owns a quarter of the customers", admin=True),
    Person("budi", OWNERS[1], "team member, owns a quarter of the customers"),
    Person("maya", OWNERS[2], "team member"),
    Person("tom", OWNERS[3], "team member"),
    Person("rudi", "U0RUDI005", "in the workspace, not on the clmbot team", on_team=False),
    Person(
        "gina", "U0GINA006", "a guest account (Slack Connect partner)", on_team=False, guest=True
    ),
)
BY_NAME = {p.name: p for p in PEOPLE}
BY_ID = {p.slack_id: p for p in PEOPLE}


def team_ids() -> str:
    return ",".join(p.slack_id for p in PEOPLE if p.on_team)


def admin_ids() -> str:
    return ",".join(p.slack_id for p in PEOPLE if p.admin)
