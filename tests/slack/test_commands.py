import logging

import pytest
from sqlmodel import select

from clmbot.store.db import session_scope
from clmbot.store.models import AuditEntry, StageChange
from tests.slack.conftest import ADMIN, OWNER


def text_of(answer: dict) -> str:
    """Everything a person sees in the answer's blocks, as one string."""
    parts = []
    for block in answer.get("blocks", []):
        if "text" in block:
            parts.append(block["text"]["text"])
        for f in block.get("fields", []):
            parts.append(f["text"])
        for e in block.get("elements", []):
            text = e.get("text", "")
            parts.append(text["text"] if isinstance(text, dict) else text)
    return "\n".join(parts)


def test_help_lists_every_subcommand_with_an_example(bot):
    for typed in ("", "help"):
        answer = bot.command(typed)
        assert answer["response_type"] == "ephemeral"
        seen = text_of(answer)
        for usage in ("/clm customer", "/clm stage", "/clm funnel", "/clm help"):
            assert usage in seen
        assert "Example: `/clm customer Acme`" in seen
        assert "/clm stage" in answer["text"]  # the plain-text fallback


def test_customer_card(bot, customers):
    answer = bot.command("customer acme corp")
    assert answer["response_type"] == "ephemeral"  # it shows an e-mail and a comment
    assert answer["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Acme Corp", "emoji": True},
    }
    seen = text_of(answer)
    assert "ops@acme.io" in seen and "tags: vip, emea" in seen
    # imported without a date for the stage: the card does not make one up
    assert "*Stage*\npurchase, since before 2026-10-15 (the import that found it)" in seen
    assert f"*Owner*\n<@{OWNER}>" in seen
    assert "*Plan*\npro" in seen and "*MRR*\n1,250.50" in seen
    assert "*Last activity*\nlogin, 2026-11-20 (4 days ago)" in seen
    assert "*NPS, latest*\n9 on 2026-11-10" in seen and "*CSAT, latest*\n4 on 2026-11-12" in seen
    assert "_Support answered within the hour_" in seen
    assert "*Stage history*\n`2026-10-15`  started in *purchase*  by import of customers.csv" in (
        seen
    )
    assert "Acme Corp (A1)" in answer["text"]


def test_stage_moves_records_history_and_audit(bot, engine, customers):
    answer = bot.command("stage Acme Corp retention renewed for 2027", user=ADMIN, channel="C0CS")
    seen = text_of(answer)
    assert "Moved *Acme Corp* from purchase to *retention*: renewed for 2027" in seen
    with session_scope(engine) as s:
        move = s.exec(
            select(StageChange).where(StageChange.to_stage == "retention", StageChange.by == ADMIN)
        ).one()
        assert move.reason == "renewed for 2027" and move.from_stage == "purchase"
        entry = s.exec(select(AuditEntry)).one()
        assert (entry.actor, entry.action, entry.channel) == (ADMIN, "stage", "C0CS")
        assert entry.detail["to_stage"] == "retention" and entry.at == move.at
    card = text_of(bot.command("customer A1"))
    assert f"purchase → *retention*  by <@{ADMIN}>: renewed for 2027" in card
    again = text_of(bot.command("stage A1 retention", user=ADMIN))
    assert "already in *retention*; nothing changed" in again


def test_stage_with_a_quoted_name_and_curly_quotes(bot, customers):
    seen = text_of(bot.command("stage \u201cBeta Logistics\u201d advocacy", user=ADMIN))
    assert "Moved *Beta Logistics* from retention to *advocacy*" in seen


def test_funnel(bot, customers):
    answer = bot.command("funnel since 60d")
    seen = text_of(answer)
    assert "Funnel" in seen and "purchase" in seen
    assert "customers on 2026-11-24" in seen
    assert "consideration → purchase" in seen
    assert "Funnel on 2026-11-24" in answer["text"]
    assert "`/clm funnel chart` posts the funnel as a picture" in seen


@pytest.mark.parametrize("typed", ["funnel chart since 60d", "funnel since 60d chart"])
def test_funnel_chart_is_uploaded_to_the_channel(bot, slack, customers, typed):
    answer = bot.command(typed, channel="C0CS")
    assert answer["response_type"] == "ephemeral"
    assert text_of(answer) == (
        ":bar_chart: I posted *Customer funnel* here: 4 customers by stage, with the "
        "conversion between stages over the last 60 days."
    )
    assert answer["text"].startswith("Customer funnel: 4 customers by stage on 2026-11-24")
    (asked,) = slack.calls_to("files.getUploadURLExternal")
    assert asked.body["filename"] == "funnel.png"
    (done,) = slack.calls_to("files.completeUploadExternal")
    assert done.body["channel_id"] == "C0CS"  # aggregates only: the channel it was asked in
    assert not slack.calls_to("conversations.open")
    (png,) = slack.uploads.values()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"


def test_a_funnel_chart_where_the_bot_is_not_says_how_to_fix_it(bot, slack, customers):
    slack.not_in.add("C0ELSEWHERE")
    seen = text_of(bot.command("funnel chart", channel="C0ELSEWHERE"))
    assert "I could not upload Customer funnel: I am not in this channel" in seen


def test_several_matches_are_listed_with_how_to_be_exact(bot, customers):
    seen = text_of(bot.command("customer acme"))
    assert "2 customers match “acme”" in seen
    assert "Acme Corp (`A1`)" in seen and "Acme Labs (`A2`)" in seen
    assert "use the external id or the e-mail, e.g. `/clm customer A1`" in seen


def test_no_match_names_the_closest(bot, customers):
    seen = text_of(bot.command("customer Betta Logistic"))
    assert "No customer matches “Betta Logistic”. Closest names: *Beta Logistics*" in seen


def test_data_is_escaped(bot, customers):
    answer = bot.command("stage X1 consideration <!here> look", user=ADMIN)
    seen = text_of(answer)
    assert "<!channel>" not in seen and "<!here>" not in seen
    assert "Moved *&lt;!channel&gt; Evil &amp; Co* from awareness" in seen
    assert ": !here look" in seen  # Slack's <!here> token arrives as words, never a mention
    assert "<!channel>" not in answer["text"] and "<!here>" not in answer["text"]
    # a header is plain text, which Slack never turns into a mention
    card = bot.command("customer X1")
    assert card["blocks"][0]["text"]["type"] == "plain_text"


def test_unknown_subcommand_suggests_and_shows_help(bot):
    answer = bot.command("fnnel since 30d")
    seen = text_of(answer)
    assert "I don't know `fnnel`. Did you mean `funnel`?" in seen
    assert "/clm customer" in seen


@pytest.mark.parametrize(
    ("typed", "problem", "usage"),
    [
        (
            "customer",
            "Say which customer",
            "/clm customer &lt;external id | e-mail | name&gt;",  # escaped: not a link
        ),
        ("stage Acme", "Say which customer, and the stage", "/clm stage &lt;customer&gt;"),
        ("stage A1 vip", "`vip` is not a stage; use one of: awareness", "/clm stage"),
        ("funnel since", "Say since when: e.g. 2024-05-01, 30d", "/clm funnel [since"),
        ("funnel since next week", "`next week` is not a date or a period", "/clm funnel"),
        ("funnel chart chart", "Say `chart` once.", "/clm funnel [since"),
        ("funnel since 30d chart junk", "I don't know what `chart junk` means", "[chart]"),
    ],
)
def test_wrong_arguments_get_the_usage(bot, customers, typed, problem, usage):
    seen = text_of(bot.command(typed, user=ADMIN))
    assert problem in seen and usage in seen and "*Example:*" in seen


def test_forget_asks_an_admin_first_and_refuses_a_member(bot, customers):
    asked = text_of(bot.command("forget A1", user=ADMIN))
    assert "Forget *Acme Corp* `A1`?" in asked and "for good" in asked
    assert "admins" in text_of(bot.command("forget A1 confirm")).lower()
    done = text_of(bot.command("forget A1 confirm", user=ADMIN))
    assert "Forgotten: A1's name, e-mail, Slack id" in done
    assert "No customer" in text_of(bot.command("customer Acme Corp", user=ADMIN))


def test_an_internal_failure_is_an_apology_with_an_error_id_in_the_log(
    bot, customers, monkeypatch, caplog
):
    import clmbot.commands.customer

    def broken(*args, **kwargs):
        raise RuntimeError("the database caught fire")

    monkeypatch.setattr(clmbot.commands.customer, "customer_profile", broken)
    with caplog.at_level(logging.ERROR, logger="clmbot.slack"):
        answer = bot.command("customer A1")
    seen = text_of(answer)
    assert "Sorry, something went wrong on our side" in seen
    assert "Traceback" not in seen and "caught fire" not in seen
    error_id = seen.split("Error id `")[1].split("`")[0]
    record = next(r for r in caplog.records if error_id in r.getMessage())
    assert record.exc_info and "the database caught fire" in str(record.exc_info[1])


def test_a_match_button_opens_the_profile(bot, slack, customers):
    from tests.fakeslack import block_actions_body

    listed = bot.command("customer acme")
    buttons = next(b for b in listed["blocks"] if b["type"] == "actions")["elements"]
    assert [b["text"]["text"] for b in buttons] == ["Acme Corp", "Acme Labs"]
    clicked = {**buttons[1], "type": "button"}
    body = block_actions_body(clicked, response_url=slack.response_url("click"))
    assert bot.post(body, "application/x-www-form-urlencoded").status == 200
    (answer,) = [c for c in slack.wait_for("response_url", count=2) if c.path.endswith("click")]
    assert answer.body["replace_original"] is True
    assert answer.body["response_type"] == "ephemeral"
    assert answer.body["blocks"][0]["text"]["text"] == "Acme Labs"


def test_text_as_slack_encodes_it(bot, customers):
    """Slack escapes &, < and > and wraps e-mail addresses: the words still find customers."""
    seen = text_of(bot.command("customer <mailto:ops@acme.io|ops@acme.io>"))
    assert "Acme Corp" in seen and "No customer" not in seen
    seen = text_of(bot.command("customer &lt;!channel&gt; Evil &amp; Co"))
    assert "awareness" in seen and "No customer" not in seen


def test_apostrophes_are_letters_and_double_quotes_group(bot, customers, engine, tmp_path):
    from clmbot.importing.runner import import_file

    path = tmp_path / "more.csv"
    path.write_text(
        "external_id,name,stage\nO1,O'Brien Ltd,purchase\nR1,Acme Retention Co,purchase\n"
    )
    import_file(engine, "customers", path, bot.settings, now=bot.bot.clock())
    assert "O'Brien Ltd" in text_of(bot.command("customer O\u2019Brien"))
    seen = text_of(bot.command("stage O'Brien retention customer's renewal", user=ADMIN))
    assert "Moved *O'Brien Ltd* from purchase to *retention*: customer's renewal" in seen


def test_a_stage_word_inside_a_name_is_not_guessed(bot, customers, engine, tmp_path):
    from clmbot.importing.runner import import_file

    path = tmp_path / "more.csv"
    path.write_text("external_id,name,stage\nR1,Acme Retention Co,purchase\nR2,Acme,purchase\n")
    import_file(engine, "customers", path, bot.settings, now=bot.bot.clock())
    seen = text_of(bot.command("stage Acme Retention Co advocacy", user=ADMIN))
    assert "are both customers: put the name in quotes" in seen
    seen = text_of(bot.command('stage "Acme Retention Co" advocacy', user=ADMIN))
    assert "Moved *Acme Retention Co* from purchase to *advocacy*" in seen


def test_several_matches_for_stage_show_an_example_with_the_stage(bot, customers):
    seen = text_of(bot.command("stage acme retention renewed", user=ADMIN))
    assert "e.g. `/clm stage A1 retention renewed`" in seen


def test_a_burst_of_slow_answers_still_gets_every_ack(bot, slack, customers):
    """Answers wait on a slow response URL; acks do not wait on answers."""
    import threading

    slack.delay("response_url", 1.0)
    replies = []

    def one(i: int) -> None:
        replies.append(bot.command(f"customer A{1 + i % 2}", wait=False))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(replies) == 24  # every one acked (command() asserts 200 and an empty body)
    assert len(slack.wait_for("response_url", count=24, timeout=30)) == 24


def test_help_and_usage_escape_every_placeholder(bot):
    """`<external id | e-mail | name>` unescaped is a link to Slack."""
    for typed in ("help", "customer", "stage"):
        answer = bot.command(typed, user=ADMIN)
        for block in answer["blocks"]:
            shown = block.get("text", {}).get("text", "")
            assert "<" not in shown.replace("<@", ""), shown


@pytest.mark.parametrize("since", ["0d", "today", "last month", "3mo", "this quarter"])
def test_funnel_since_today_months_and_calendar_words(bot, customers, since):
    seen = text_of(bot.command(f"funnel since {since}"))
    assert "Funnel" in seen and "Sorry" not in seen


def test_a_stage_move_with_several_matches_offers_a_button_per_customer(
    bot, slack, engine, customers
):
    from tests.fakeslack import block_actions_body
    from tests.helpers import rows

    listed = bot.command("stage acme retention renewed", user=ADMIN)
    seen = text_of(listed)
    assert "Which one did you mean to `stage … retention renewed`?" in seen
    buttons = next(b for b in listed["blocks"] if b["type"] == "actions")["elements"]
    assert [b["text"]["text"] for b in buttons] == ["Acme Corp", "Acme Labs"]
    # a member who clicks is refused like one who typed it
    click = block_actions_body(buttons[1], response_url=slack.response_url("pick1"))
    assert bot.post(click, "application/x-www-form-urlencoded").status == 200
    (refused,) = [c for c in slack.wait_for("response_url", count=2) if c.path.endswith("pick1")]
    assert "only clmbot admins may do" in text_of(refused.body)
    # the admin's click makes the move, for the customer picked
    click = block_actions_body(buttons[1], response_url=slack.response_url("pick2"), user=ADMIN)
    assert bot.post(click, "application/x-www-form-urlencoded").status == 200
    (moved,) = [c for c in slack.wait_for("response_url", count=3) if c.path.endswith("pick2")]
    assert moved.body["replace_original"] is True
    assert "Moved *Acme Labs* from consideration to *retention*: renewed" in text_of(moved.body)
    assert ("A2", "retention") in rows(engine, "customers", "external_id", "stage")


def test_matches_sort_naturally(bot, engine, customers, tmp_path):
    from clmbot.importing.runner import import_file

    path = tmp_path / "shops.csv"
    path.write_text(
        "external_id,name\n" + "".join(f"S{n},Shop {n}\n" for n in (10, 2, 1, 11, 3, 20))
    )
    import_file(engine, "customers", path, bot.settings, now=bot.bot.clock())
    answer = bot.command("customer shop")
    buttons = next(b for b in answer["blocks"] if b["type"] == "actions")["elements"]
    names = [b["text"]["text"] for b in buttons]
    assert names == ["Shop 1", "Shop 2", "Shop 3", "Shop 10", "Shop 11", "Shop 20"]


def test_the_card_shows_the_currency_and_what_a_churned_customer_paid(bot_with, engine, customers):
    from clmbot.config import DisplayConfig

    bot = bot_with(display=DisplayConfig(currency="$"))
    assert "*MRR*\n$1,250.50" in text_of(bot.command("customer A1"))
    bot.command("stage A1 churned", user=ADMIN)
    assert "*MRR*\n$1,250.50 before churned" in text_of(bot.command("customer A1"))
