"""The customer's side of a survey: a click or a message becomes at most one answer.

Every change of a survey here is a conditional UPDATE (`… WHERE status = 'sent'`), so that
two clicks at once, a click replayed, or Slack delivering a message twice find the work done
by the first and store nothing more. An answer is one `feedback` row, created with the first
score and changed in place when the customer changes their mind within the hour.

What comes back is what to tell the customer, in their language; nothing in it is about
anyone else, or about what the team knows of them (risk, owner, notes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from clmbot.store.models import (
    ANSWERED,
    CANCELLED,
    FEEDBACK_SCALES,
    QUEUED,
    SENDING,
    SENT,
    Customer,
    Feedback,
    Survey,
    SurveyOptOut,
)
from clmbot.surveys.settings import SurveyConfig
from clmbot.surveys.texts import STOP_WORDS, language_of

COMMENT_LIMIT = 4000
_SCORE = re.compile(r"^\s*(\d{1,2})(?:\s*/\s*(\d{1,2}))?(?=$|[\s,.;:!?)-])[\s,.;:!?)-]*(.*)$", re.S)
# Control characters (a NUL byte, say) mean nothing in a reply, and PostgreSQL stores no NUL.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_S = Survey.__table__
_F = Feedback.__table__


@dataclass(frozen=True)
class AskedSurvey:
    """A question as the customer sees it, to draw it again after a change."""

    id: int
    kind: str
    language: str
    channel_id: str | None
    message_ts: str | None
    score: int | None  # chosen so far
    changeable: bool  # a new score would still replace it
    closed: bool  # expired or cancelled: no buttons


@dataclass(frozen=True)
class Reply:
    """`texts`: catalogue keys with their values, in `language`; `survey`: the question to
    draw again (its score changed); `answered`: the team's post of this answer is due."""

    language: str
    texts: tuple[tuple[str, dict[str, object]], ...]
    survey: AskedSurvey | None = None
    answered: bool = False

    @property
    def idle(self) -> bool:
        """Nothing was open for this customer: they were only told so."""
        return self.texts == (("nothing_open", {}),)


def is_stop(text: str) -> bool:
    return text.strip().lower().strip(" .!") in STOP_WORDS


def read_score(text: str, kind: str) -> tuple[int, str] | None:
    """`8`, `8/10`, `8 great support`, `8, great support` → (8, "great support"); None when
    the text does not start with a number, or gives it out of another scale (`5/10` for a
    CSAT). The number may be out of the scale: the caller asks again."""
    match = _SCORE.match(text)
    if not match:
        return None
    if match[2] is not None and int(match[2]) != FEEDBACK_SCALES[kind][1]:
        return None
    return int(match[1]), match[3].strip()


def clean(text: str) -> str:
    return _CONTROL.sub("", text).strip()


def click(
    session: Session,
    *,
    survey_id: int,
    slack_user_id: str,
    score: int,
    now: datetime,
    config: SurveyConfig,
) -> Reply | None:
    """A score button pressed. None when the survey is not this person's (a forged click):
    nothing happens and nothing is said."""
    survey = _survey_of(session, survey_id, slack_user_id)
    if survey is None:
        return None
    low, high = FEEDBACK_SCALES[survey.kind]
    if not low <= score <= high:
        return None
    return _take_score(session, survey, score, "", now, config)


def message(
    session: Session, *, slack_user_id: str, text: str, now: datetime, config: SurveyConfig
) -> Reply | None:
    """A DM from `slack_user_id`. None when they are no customer (the caller decides what a
    stranger or a team member gets)."""
    customers = session.execute(
        select(Customer.id, Customer.locale).where(
            Customer.slack_user_id == slack_user_id, Customer.forgotten_at.is_(None)
        )
    ).all()
    if not customers:
        return None
    text = clean(text)
    survey = _open_survey(session, [c.id for c in customers], now, config)
    language = (
        survey.language
        if survey is not None and survey.language
        else language_of(next((c.locale for c in customers if c.locale), None))
    )
    if is_stop(text):
        _opt_out(session, [c.id for c in customers], now)
        return Reply(language, (("opted_out", {}),))
    if survey is None:
        return Reply(language, (("nothing_open", {}),))
    low, high = FEEDBACK_SCALES[survey.kind]
    said = read_score(text, survey.kind)
    if survey.status == SENT:
        if said is None or not low <= said[0] <= high:
            return Reply(language, (("not_a_score", {"low": low, "high": high}),))
        return _take_score(session, survey, said[0], said[1], now, config)
    # Answered, within the time for a comment: a new score (within the hour), the comment
    # (the next message only), or the same words again (a message Slack delivered twice).
    if said is not None and low <= said[0] <= high and said[0] != survey.score:
        return _take_score(session, survey, said[0], said[1], now, config)
    words = said[1] if said is not None and said[0] == survey.score else text
    if not words:
        return Reply(language, (("chosen", {"score": survey.score}),))
    if survey.comment:
        if survey.comment == words[:COMMENT_LIMIT]:
            return Reply(language, (("thanks_comment", {}),))
        return Reply(language, (("nothing_open", {}),))
    _add_comment(session, survey, words)
    return Reply(language, (("thanks_comment", {}),), answered=True)


def _take_score(
    session: Session, survey: Survey, score: int, comment: str, now: datetime, config: SurveyConfig
) -> Reply:
    language = survey.language or _customer_language(session, survey)
    assert survey.id is not None
    # A click on a question still `sending` is the proof it reached the customer: its sender
    # stopped (killed, say) before it could mark it sent. The answer counts, and the sender
    # that takes the claim over finds it answered and sends nothing. (A typed number is no
    # such proof: `_open_survey` offers it only questions marked sent.)
    if survey.status in (SENT, SENDING) and not _expired(survey, now, config):
        taken = session.execute(
            update(_S)
            .where(_S.c.id == survey.id, _S.c.status == survey.status)
            .values(
                status=ANSWERED,
                score=score,
                answered_at=now,
                comment=comment[:COMMENT_LIMIT] or None,
                team_post_due=True,
                sent_at=func.coalesce(_S.c.sent_at, now),
                language=func.coalesce(_S.c.language, language),
            ),
            execution_options={"preserve_rowcount": True},
        ).rowcount
        if taken == 1:
            feedback_id = _insert_feedback(session, survey, score, comment, now)
            session.execute(update(_S).where(_S.c.id == survey.id).values(feedback_id=feedback_id))
            said = ("thanks_comment", {}) if comment else ("ask_reason", {})
            return Reply(
                language,
                (("chosen", {"score": score}), said),
                _asked(survey, score, True, False),
                answered=True,
            )
        session.refresh(survey)  # someone else's click came first: go on from theirs
    if survey.status != ANSWERED or survey.answered_at is None:
        return Reply(language, (("closed", {}),), _asked(survey, survey.score, False, True))
    if score == survey.score:
        changeable = now - survey.answered_at <= config.change_for
        return Reply(
            language, (("chosen", {"score": score}),), _asked(survey, score, changeable, False)
        )
    if now - survey.answered_at > config.change_for:
        if comment and not survey.comment:
            _add_comment(session, survey, comment)
        return Reply(
            language,
            (("too_late", {"score": survey.score}),),
            _asked(survey, survey.score, False, False),
            answered=bool(comment and not survey.comment),
        )
    session.execute(update(_S).where(_S.c.id == survey.id).values(score=score, team_post_due=True))
    if survey.feedback_id is not None:
        session.execute(update(_F).where(_F.c.id == survey.feedback_id).values(score=score))
    if comment and not survey.comment:
        _add_comment(session, survey, comment)
    return Reply(
        language,
        (("changed", {"score": score}),),
        _asked(survey, score, True, False),
        answered=True,
    )


def _insert_feedback(
    session: Session, survey: Survey, score: int, comment: str, now: datetime
) -> int:
    """The answer as every report reads it. A customer who answered another survey of the
    same kind at this very microsecond would collide; the later one waits a microsecond."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    at = now
    for _ in range(5):
        inserted = session.execute(
            dialect.insert(_F)
            .values(
                customer_id=survey.customer_id,
                kind=survey.kind,
                score=score,
                comment=comment[:COMMENT_LIMIT] or None,
                responded_at=at,
                source="survey",
                attributes={"survey_id": survey.id},
            )
            .on_conflict_do_nothing()
            .returning(_F.c.id)
        ).scalar()
        if inserted is not None:
            return int(inserted)
        at = at.replace(microsecond=(at.microsecond + 1) % 1_000_000)
    raise RuntimeError("could not store the answer: five answers at the same moment")


def _add_comment(session: Session, survey: Survey, text: str) -> None:
    """The customer's words after their score: their comment, unless they gave one already."""
    text = clean(text)[:COMMENT_LIMIT]
    if not text:
        return
    session.execute(
        update(_S)
        .where(_S.c.id == survey.id, _S.c.comment.is_(None))
        .values(comment=text, team_post_due=True)
    )
    if survey.feedback_id is not None:
        session.execute(
            update(_F)
            .where(_F.c.id == survey.feedback_id, _F.c.comment.is_(None))
            .values(comment=text)
        )


def _opt_out(session: Session, customer_ids: list[int], now: datetime) -> None:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    for customer_id in customer_ids:
        session.execute(
            dialect.insert(SurveyOptOut.__table__)
            .values(customer_id=customer_id, at=now)
            .on_conflict_do_nothing()
        )
    # What has not gone yet will not go; what is in their DM is closed.
    session.execute(
        update(_S)
        .where(_S.c.customer_id.in_(customer_ids), _S.c.status.in_((QUEUED, SENDING, SENT)))
        .values(status=CANCELLED, closed_at=now, error="opted out")
    )


def _customer_language(session: Session, survey: Survey) -> str:
    """The language of a question not marked sent yet (the sender records the one it used)."""
    locale = session.execute(
        select(Customer.locale).where(Customer.id == survey.customer_id)
    ).scalar()
    return language_of(locale)


def _survey_of(session: Session, survey_id: int, slack_user_id: str) -> Survey | None:
    return session.execute(
        select(Survey)
        .join(Customer, Customer.id == Survey.customer_id)
        .where(Survey.id == survey_id, Customer.slack_user_id == slack_user_id)
    ).scalar()


def _open_survey(
    session: Session, customer_ids: list[int], now: datetime, config: SurveyConfig
) -> Survey | None:
    """The survey a message from these customers is about: one awaiting a score, else one
    answered recently enough that the message is the comment. The latest wins."""
    rows = session.execute(
        select(Survey)
        .where(Survey.customer_id.in_(customer_ids), Survey.status.in_((SENT, ANSWERED)))
        .order_by(Survey.sent_at.desc())
        .limit(5)
    ).scalars()
    for survey in rows:
        if survey.status == SENT and not _expired(survey, now, config):
            return survey
        if (
            survey.status == ANSWERED
            and survey.answered_at is not None
            and now - survey.answered_at <= config.comment_for
        ):
            return survey
    return None


def _expired(survey: Survey, now: datetime, config: SurveyConfig) -> bool:
    return survey.sent_at is not None and now - survey.sent_at >= config.expire_after


def _asked(survey: Survey, score: int | None, changeable: bool, closed: bool) -> AskedSurvey:
    assert survey.id is not None
    return AskedSurvey(
        survey.id,
        survey.kind,
        survey.language or "en",
        survey.channel_id,
        survey.message_ts,
        score,
        changeable,
        closed,
    )
