"""`/clm at-risk` through the Slack stand-in: ephemeral, highest first, paged."""

from __future__ import annotations

from clmbot.config import Settings
from clmbot.risk import runs
from tests.risk.test_backtest import TODAY, shop  # noqa: F401  (the fixture)
from tests.slack.conftest import MEMBER


def test_at_risk_lists_the_latest_pass_and_pages(bot, slack, engine, shop, clock):  # noqa: F811
    answer = bot.command("at-risk", user=MEMBER)
    assert "No risk pass is stored yet" in answer["blocks"][0]["text"]["text"]
    runs.run(engine, TODAY.date(), as_of=TODAY, now=TODAY, settings=Settings(), by="test")
    clock.now = TODAY
    answer = bot.command("at-risk", user=MEMBER)
    assert answer["response_type"] == "ephemeral"
    assert answer["blocks"][0]["text"]["text"].startswith("At risk: ")
    listed = [b for b in answer["blocks"] if b["type"] == "section"]
    risks = [int(b["text"]["text"].split("*")[1]) for b in listed]
    assert len(listed) == 10 and risks == sorted(risks, reverse=True) and min(risks) >= 70
    assert "• no purchase" in answer["blocks"][2]["text"]["text"]
    assert answer["blocks"][2]["accessory"]["text"]["text"] == "Open card"
    more = answer["blocks"][-1]["elements"][0]
    assert more["text"]["text"] == "Next 10" and "at-risk page 2" in more["value"]


def test_the_card_shows_the_risk_and_its_reasons(bot, slack, engine, shop, clock):  # noqa: F811
    runs.run(engine, TODAY.date(), as_of=TODAY, now=TODAY, settings=Settings(), by="test")
    clock.now = TODAY
    top = bot.command("at-risk", user=MEMBER)["blocks"][2]["accessory"]["value"]
    card = bot.command(f"customer {top}", user=MEMBER)
    shown = [b["text"]["text"] for b in card["blocks"] if b["type"] == "section" and "text" in b]
    assert any(t.startswith("*Churn risk ") and "\n• " in t for t in shown)
