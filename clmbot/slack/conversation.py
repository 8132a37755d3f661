"""A customer's side of the DM with the bot, in Slack's terms: what to reply, and which
survey question to redraw. The decisions are `clmbot.surveys.answers`'; this module only
turns them into messages, in the customer's language."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, select
from sqlmodel import Session

from clmbot.config import Settings
from clmbot.slack.views import survey_dm
from clmbot.slack.views.base import Message
from clmbot.store.models import Customer
from clmbot.surveys import answers

# Asked of nearly every request, so made once (building it cost more than running it).
# A one-row look-up, not `EXISTS(…)`: when most customers have no Slack id, ANALYZE tells
# SQLite the column holds one value, and it then scanned the whole table for the `EXISTS`
# (34 ms at 100,000 customers) instead of the index.
_BY_SLACK_ID = select(Customer.id).where(Customer.slack_user_id == bindparam("user")).limit(1)


def is_customer(session: Session, slack_user_id: str) -> bool:
    # Through the connection: a Core statement gains nothing from the ORM's round.
    found = session.connection().execute(_BY_SLACK_ID, {"user": slack_user_id}).first()
    return found is not None


def redraw(settings: Settings, reply: answers.Reply) -> Message | None:
    """The question as it should now look, or None when nothing about it changed."""
    asked = reply.survey
    if asked is None:
        return None
    config = settings.surveys
    if asked.closed:
        return survey_dm.closed(config, asked.kind, asked.language)
    lines = survey_dm.say_all(config, asked.language, reply.texts)
    return survey_dm.question(
        config,
        asked.id,
        asked.kind,
        asked.language,
        chosen=asked.score,
        lines=lines,
        buttons=asked.changeable,
    )


def on_message(
    session: Session, settings: Settings, *, user_id: str, text: str, now: datetime
) -> tuple[Message, answers.Reply] | None:
    """The reply to a customer's DM, with the question redrawn when a typed score changed
    it; None when `user_id` is no customer."""
    reply = answers.message(
        session, slack_user_id=user_id, text=text, now=now, config=settings.surveys
    )
    if reply is None:
        return None
    lines = survey_dm.say_all(settings.surveys, reply.language, reply.texts)
    message = survey_dm.reply(settings.surveys, reply.language, lines)
    question = redraw(settings, reply)
    asked = reply.survey
    if question is not None and asked is not None and asked.channel_id and asked.message_ts:
        message.edits.append(
            {"channel": asked.channel_id, "ts": asked.message_ts, **question.as_kwargs()}
        )
    return message, reply


def on_click(
    session: Session, settings: Settings, *, user_id: str, value: str, now: datetime
) -> tuple[Message, bool] | None:
    """The question redrawn after a score button; and whether an answer was stored or
    changed. None for a click that is not this person's to make (nothing happens)."""
    survey_id, _, score = value.partition(":")
    if not (survey_id.isascii() and survey_id.isdigit() and score.isascii() and score.isdigit()):
        return None
    reply = answers.click(
        session,
        survey_id=int(survey_id),
        slack_user_id=user_id,
        score=int(score),
        now=now,
        config=settings.surveys,
    )
    if reply is None:
        return None
    question = redraw(settings, reply)
    assert question is not None
    return question, reply.answered
