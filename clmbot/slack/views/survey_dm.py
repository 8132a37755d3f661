"""What a customer sees in their DM with the bot (the question, its buttons, what follows a
click), and the post the team sees when an answer arrives.

Customer-facing text comes only from the catalogue (`clmbot.surveys.texts`), in the
language the customer was asked in; nothing here reads internal data.
"""

from __future__ import annotations

from datetime import tzinfo

from clmbot import plain
from clmbot.slack.views.base import Block, Message, clip, context, esc, section, strip_markup
from clmbot.store.models import FEEDBACK_SCALES
from clmbot.surveys.outbox import TeamPost
from clmbot.surveys.settings import SurveyConfig

SURVEY_SCORE = "survey_score"
# The event type of the metadata on every survey message: how a sender that restarts finds
# out whether the survey it was sending reached the customer.
SURVEY_EVENT = "clmbot_survey"
REMINDER_EVENT = "clmbot_survey_reminder"
# On the answer's post in CLMBOT_FEEDBACK_CHANNEL (the survey's id only, nothing personal).
ANSWER_EVENT = "clmbot_survey_answer"


def _buttons(survey_id: int, kind: str, chosen: int | None) -> Block:
    low, high = FEEDBACK_SCALES[kind]
    elements = []
    for score in range(low, high + 1):
        button: Block = {
            "type": "button",
            "action_id": f"{SURVEY_SCORE}:{score}",
            "text": {"type": "plain_text", "text": str(score)},
            "value": f"{survey_id}:{score}",
        }
        if score == chosen:
            button["style"] = "primary"
        elements.append(button)
    return {"type": "actions", "block_id": f"survey:{survey_id}", "elements": elements}


def _question(config: SurveyConfig, kind: str, language: str) -> str:
    texts = config.texts
    product = config.product or texts.say(language, "product")
    return texts.say(language, f"{kind}_question", product=product)


def question(
    config: SurveyConfig,
    survey_id: int,
    kind: str,
    language: str,
    *,
    chosen: int | None = None,
    lines: tuple[str, ...] = (),
    buttons: bool = True,
    reminder: bool = False,
) -> Message:
    """The question, as first sent (`lines` empty) or redrawn after a change (`lines`: what
    the customer is told, e.g. their score and "what is the main reason?")."""
    texts = config.texts
    ask = _question(config, kind, language)
    first = texts.say(language, "reminder" if reminder else "greeting")
    blocks: list[Block] = [section(f"{esc(first)}\n*{esc(ask)}*")]
    if lines:
        blocks.append(section("\n".join(lines)))
    if buttons:
        blocks.append(_buttons(survey_id, kind, chosen))
    scale = texts.say(language, f"{kind}_scale")
    blocks.append(context(esc(scale) + "\n" + texts.say(language, "stop_hint")))
    fallback = f"{first} {ask}" if not lines else strip_markup(" ".join(lines))
    return Message(fallback, blocks)


def reply(config: SurveyConfig, language: str, lines: tuple[str, ...]) -> Message:
    """A message to the customer in the DM: catalogue texts only."""
    return Message(strip_markup(" ".join(lines)), [section("\n".join(lines))])


def say_all(
    config: SurveyConfig, language: str, texts: tuple[tuple[str, dict[str, object]], ...]
) -> tuple[str, ...]:
    return tuple(config.texts.say(language, key, **values) for key, values in texts)


def closed(config: SurveyConfig, kind: str, language: str) -> Message:
    ask = _question(config, kind, language)
    note = config.texts.say(language, "closed")
    return Message(note, [section(f"~{esc(ask)}~\n{esc(note)}")])


# --- the team's view ----------------------------------------------------------------------


def is_detractor(kind: str, score: int) -> bool:
    return score <= 6 if kind == "nps" else score <= 2


def answer_post(post: TeamPost, zone: tzinfo) -> Message:
    """An answer as it arrives in CLMBOT_FEEDBACK_CHANNEL; the owner is mentioned when the
    customer is unhappy (NPS 0-6, CSAT 1-2), so that someone follows up."""
    high = FEEDBACK_SCALES[post.kind][1]
    unhappy = is_detractor(post.kind, post.score)
    mark = ":rotating_light:" if unhappy else ":speech_balloon:"
    name = esc(clip(post.customer_name, 150))
    head = (
        f"{mark} *{post.kind.upper()} {post.score}*/{high} from *{name}* "
        f"`{esc(clip(post.external_id, 60))}`"
    )
    if unhappy:
        head += " — " + (
            f"<@{esc(post.owner_slack_id)}>, a detractor: worth a call"
            if post.owner_slack_id
            else "a detractor, and no owner: worth a call"
        )
    comment = (
        f">{esc(clip(post.comment, 1500))}".replace("\n", "\n>")
        if post.comment
        else "_no comment yet_"
    )
    blocks = [
        section(head),
        section(comment),
        context(f"Survey run #{post.run_id} · answered {plain.when(post.answered_at, zone)}"),
    ]
    text = f"{post.kind.upper()} {post.score} from {post.customer_name}"
    return Message(text, blocks)
