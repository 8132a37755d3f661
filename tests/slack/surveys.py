"""What the survey tests share: customers who are Slack users, and a customer's hand on
the buttons and the keyboard."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from clmbot.config import Settings
from clmbot.importing.runner import import_file
from tests.conftest import NOW
from tests.fakeslack import FakeSlack, Reply, block_actions_body
from tests.helpers import rows
from tests.slack.conftest import OWNER, BotUnderTest

# NOW is Tuesday 2026-11-24 12:00 UTC: 09:00 in São Paulo (their hours have begun), 19:00 in
# Jakarta (theirs are over until Wednesday 09:00, 02:00 UTC).
ANA, BUDI, CARLA = "U0CUSTANA", "U0CUSTBUDI", "U0CUSTCARLA"
JAKARTA_OPENS = datetime.fromisoformat("2026-11-25T02:00:00+00:00")
_ids = itertools.count(1)


def add_customers(engine: Engine, settings: Settings, folder: Path, csv_rows: str) -> None:
    path = folder / f"survey-customers-{next(_ids)}.csv"
    path.write_text(
        "external_id,name,slack_user_id,stage,owner_slack_id,locale,timezone,plan\n" + csv_rows
    )
    import_file(engine, "customers", path, settings, now=NOW - timedelta(days=400))


def two_customers(engine: Engine, settings: Settings, folder: Path, slack: FakeSlack) -> None:
    """Ana in São Paulo (English), Budi in Jakarta (Indonesian)."""
    add_customers(
        engine,
        settings,
        folder,
        f"S1,Ana Lima,{ANA},retention,{OWNER},en,America/Sao_Paulo,pro\n"
        f"J1,Budi Santoso,{BUDI},retention,{OWNER},id,Asia/Jakarta,pro\n",
    )
    slack.add_user(ANA)
    slack.add_user(BUDI)


def dm_channel(user: str) -> str:
    """The DM channel the stand-in opens with a user."""
    return "D" + user.lstrip("UW")


def question_of(slack: FakeSlack, user: str) -> dict:
    """The survey question in the customer's DM, as it is now (edits applied)."""
    asked = [m for m in slack.messages.get(dm_channel(user), []) if m.get("metadata")]
    assert asked, f"no survey in {user}'s DM"
    return asked[0]


def buttons(message: dict) -> list[dict]:
    return [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


def texts(message: dict) -> str:
    out = []
    for block in message["blocks"]:
        if block["type"] in ("section", "context"):
            parts = [block["text"]] if "text" in block else block.get("elements", [])
            out += [p["text"] for p in parts]
    return "\n".join(out)


def click(bot: BotUnderTest, user: str, score: int, *, message: dict | None = None) -> Reply:
    """The customer presses the button for `score` on their question (or on `message`)."""
    message = message or question_of(bot.slack, user)
    button = next(b for b in buttons(message) if b["text"]["text"] == str(score))
    body = block_actions_body(
        {"action_id": button["action_id"], "value": button["value"], "type": "button"},
        response_url=bot.slack.response_url(f"click-{next(_ids)}"),
        user=user,
        channel=dm_channel(user),
        message_ts=message["ts"],
        ephemeral=False,
    )
    reply = bot.post(body, "application/x-www-form-urlencoded")
    assert reply.status == 200, reply
    return reply


def dm(bot: BotUnderTest, user: str, text: str, *, event_id: str | None = None) -> Reply:
    """The customer writes to the bot."""
    event = {
        "type": "message",
        "channel_type": "im",
        "channel": dm_channel(user),
        "user": user,
        "text": text,
        "ts": f"1764000000.{next(_ids):06d}",
    }
    reply = bot.event(event, event_id=event_id or f"Ev{next(_ids):08d}")
    assert reply.status == 200, reply
    return reply


def posts_to(slack: FakeSlack, channel: str) -> list[dict]:
    """What was posted to `channel` (a post to a user lands in their DM)."""

    def where(call_channel: str) -> str:
        return "D" + call_channel.lstrip("UW") if call_channel[:1] in ("U", "W") else call_channel

    return [
        c.body
        for c in slack.calls_to("chat.postMessage")
        if where(str(c.body.get("channel"))) == channel
    ]


def surveys(engine: Engine, *columns: str) -> list[tuple]:
    return rows(engine, "surveys", *columns)


def answers(engine: Engine) -> list[tuple]:
    return rows(engine, "feedback", "customer_id", "kind", "score", "comment", "source")
