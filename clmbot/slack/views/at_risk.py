"""The customers at risk: the highest first, each with the reasons, MRR, owner and a button
to open the card; the next page behind a button."""

from __future__ import annotations

from clmbot.results import AtRiskResult
from clmbot.slack.views.base import (
    Block,
    Where,
    clip,
    context,
    esc,
    header,
    open_profile_button,
    run_button,
    section,
    user,
)


def at_risk_blocks(result: AtRiskResult, where: Where) -> list[Block]:
    page = result.page
    of = f" in `{esc(clip(result.of, 300))}`" if result.of else ""
    if page.day is None:
        return [
            section(
                "No risk pass is stored yet. The daily job stores one each morning; an admin "
                "can store one now with `clmbot alerts run`."
            )
        ]
    if not page.rows:
        return [
            section(f"No customer{of} is at risk {result.threshold} or more."),
            context(f"The pass of {page.day:%Y-%m-%d}"),
        ]
    money = where.display.money
    blocks: list[Block] = [
        header(f"At risk: {page.total:,} customers"),
        context(
            f"Risk {result.threshold} or more{of}, highest first · the pass of "
            f"{page.day:%Y-%m-%d} · page {result.page_no}"
        ),
    ]
    for i, r in enumerate(page.rows):
        reasons = "\n".join(f"• {esc(clip(reason, 200))}" for reason in r.reasons[:5])
        mrr = esc(money(r.mrr)) if r.mrr is not None else "—"
        block = section(
            f"*{r.risk}* · *{esc(clip(r.name, 100))}* `{esc(clip(r.external_id, 60))}` · "
            f"MRR {mrr} · {user(r.owner_slack_id)}\n{reasons or '_no single reason stands out_'}"
        )
        block["accessory"] = open_profile_button(r.external_id, "Open card", i)
        blocks.append(block)
    if result.more:
        button = run_button(result.more, "Next 10")
        if button is not None:
            blocks.append({"type": "actions", "block_id": "at_risk_more", "elements": [button]})
    return blocks


VIEWS = {AtRiskResult: at_risk_blocks}
