"""Forgetting a customer: the question first (it cannot be undone), then what was erased."""

from __future__ import annotations

from clmbot import plain
from clmbot.results import ForgetConfirmResult, ForgottenResult
from clmbot.slack.views.base import Block, Where, clip, context, esc, run_button, section


def confirm_blocks(result: ForgetConfirmResult, where: Where) -> list[Block]:
    c = result.customer
    blocks: list[Block] = [
        section(
            f":warning: Forget *{esc(clip(c.name, 300))}* `{esc(clip(c.external_id, 200))}`? "
            "This erases their name, e-mail, Slack id, tags, attributes, comments and survey "
            "replies *for good*. Their scores, events and stage history stay, anonymous, in "
            "every count."
        )
    ]
    button = run_button(result.confirm, f"Forget {clip(c.external_id, 60)}")
    if button is not None:
        button["style"] = "danger"
        blocks.append({"type": "actions", "elements": [button]})
    blocks.append(context(f"Or type `{esc(where.prefix)}{esc(clip(result.confirm, 300))}`"))
    return blocks


def forgotten_blocks(result: ForgottenResult, where: Where) -> list[Block]:
    text = plain.render(result, where.zone, prefix=where.prefix)
    return [section(f":wastebasket: {esc(text)}")]


VIEWS = {ForgetConfirmResult: confirm_blocks, ForgottenResult: forgotten_blocks}
