"""Segments, NPS/CSAT and feedback through the real app and the Slack stand-in: what a person
sees, what is stored, what is uploaded."""

from __future__ import annotations

import csv
import io
import json

from sqlmodel import select

from clmbot.store.db import session_scope
from clmbot.store.models import AuditEntry, SavedSegment
from tests.fakeslack import block_actions_body
from tests.slack.conftest import ADMIN, MEMBER
from tests.slack.test_commands import text_of


def test_segment_summary_with_open_card_buttons(bot, customers):
    answer = bot.command("segment plan:pro,team")
    assert answer["response_type"] == "ephemeral"
    seen = text_of(answer)
    assert answer["blocks"][0]["text"]["text"] == "2 customers · MRR 1,700.50"
    assert "retention *1*" in seen and "purchase *1*" in seen
    buttons = [b["accessory"] for b in answer["blocks"] if "accessory" in b]
    assert [b["value"] for b in buttons] == ["A1", "B1"]  # by MRR
    assert all(b["text"]["text"] == "Open card" for b in buttons)
    assert "Segment plan:pro,team: 2 customers" in answer["text"]


def test_a_parse_error_points_at_the_token(bot, customers):
    seen = text_of(bot.command("segment stag:retention"))
    assert "unknown field 'stag' at position 1; did you mean 'stage'?" in seen
    assert "*Usage:* `/clm segment" in seen


def test_save_list_use_and_delete_a_segment(bot, engine, customers):
    refused = text_of(bot.command("segment save paying plan:pro,team", user=MEMBER))
    assert "only clmbot admins" in refused
    saved = text_of(bot.command("segment save paying plan:pro,team", user=ADMIN, channel="C0CS"))
    assert "Saved segment *paying*: `plan:pro,team` (2 customers now)" in saved
    listed = text_of(bot.command("segments"))
    assert "*paying* · *2* · `plan:pro,team`" in listed
    used = bot.command("segment paying -plan:team")
    assert used["blocks"][0]["text"]["text"].startswith("1 customer ·")
    assert "NPS +100" in text_of(bot.command("nps paying"))  # a saved name in another command
    deleted = text_of(bot.command("segment delete paying", user=ADMIN))
    assert "Deleted segment *paying*" in deleted
    with session_scope(engine) as s:
        assert s.exec(select(SavedSegment)).all() == []
        actions = [e.action for e in s.exec(select(AuditEntry).order_by(AuditEntry.id)).all()]
    assert actions == ["segment save", "segment delete"]
    gone = text_of(bot.command("segment delete paying", user=ADMIN))
    assert "No segment is saved as `paying`" in gone


def test_export_goes_to_the_askers_dm_with_formulas_neutralised(bot, slack, engine, customers):
    from clmbot.store.models import Customer

    with session_scope(engine) as s:
        evil = s.exec(select(Customer).where(Customer.external_id == "A2")).one()
        evil.name = '=HYPERLINK("http://evil.example","click")'
        evil.plan = "pro"
        s.add(evil)
    answer = bot.command("segment plan:pro export", user=MEMBER, channel="C0GENERAL")
    seen = text_of(answer)
    assert "I sent you *segment-plan.csv* in a DM: 2 customers" in seen
    (opened,) = slack.calls_to("conversations.open")
    assert opened.body["users"] == MEMBER
    (done,) = slack.calls_to("files.completeUploadExternal")
    assert done.body["channel_id"] == "D0MEMBER"  # the DM, never the channel it was typed in
    (content,) = slack.uploads.values()
    rows = list(csv.reader(io.StringIO(content.decode())))
    assert rows[0][:4] == ["external_id", "name", "email", "stage"]
    names = {r[0]: r[1] for r in rows[1:]}
    assert names["A2"] == '\'=HYPERLINK("http://evil.example","click")'
    assert names["A1"] == "Acme Corp"
    with session_scope(engine) as s:
        (entry,) = s.exec(select(AuditEntry)).all()
    assert (entry.actor, entry.action, entry.detail["rows"]) == (MEMBER, "segment export", 2)


def test_nps_with_interval_counts_and_trend(bot, customers):
    answer = bot.command("nps")
    seen = text_of(answer)
    assert answer["blocks"][0]["text"]["text"] == "NPS +100"  # A1's latest answer is a 9
    assert "1 promoters, 0 passives, 0 detractors" in seen
    assert "*1* customers (2 answers in all)" in seen
    assert "`2026-06`" in seen and "`2026-11`" in seen
    by = text_of(bot.command("csat by plan since 1y"))
    assert "CSAT by plan" in by and "*100%* pro" in by and "too few to mean much" in by
    bad = text_of(bot.command("nps by colour"))
    assert "Group by one of: stage, plan, region, owner" in bad


def test_nps_chart_is_uploaded_to_the_channel(bot, slack, customers):
    answer = bot.command("nps chart", channel="C0CS")
    assert "I posted *NPS by month* here" in text_of(answer)
    filtered = text_of(bot.command('nps plan:pro name:"x" chart', channel="C0CS"))
    assert "unknown field" in filtered  # a typo: nothing posted
    private = text_of(bot.command("nps plan:pro chart", channel="C0CS"))
    assert "*NPS by month, a segment*" in private  # the filters stay out of the channel
    bot.command("segment save paying plan:pro", user=ADMIN)
    named = text_of(bot.command("nps paying chart", channel="C0CS"))
    assert "*NPS by month, segment paying*" in named
    mixed = text_of(bot.command("nps paying -stage:churned chart", channel="C0CS"))
    assert "*NPS by month, a segment*" in mixed
    done = slack.calls_to("files.completeUploadExternal")[0]
    assert done.body["channel_id"] == "C0CS"
    png = next(iter(slack.uploads.values()))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_a_chart_where_the_bot_is_not_says_how_to_fix_it(bot, slack, customers):
    slack.not_in.add("C0ELSEWHERE")
    seen = text_of(bot.command("nps chart", channel="C0ELSEWHERE"))
    assert "I am not in this channel: invite me with `/invite @clmbot`" in seen


def test_feedback_pages_with_a_more_button(bot, slack, engine, customers, tmp_path, bot_settings):
    from clmbot.importing.runner import import_file
    from tests.conftest import NOW

    rows = "\n".join(
        f"B1,nps,{i % 11},comment number {i},2026-10-{i + 1:02d}T10:00:00Z" for i in range(14)
    )
    path = tmp_path / "more.csv"
    path.write_text("customer_external_id,kind,score,comment,responded_at\n" + rows + "\n")
    import_file(engine, "feedback", path, bot_settings, now=NOW)
    one = text_of(bot.command("feedback Acme Corp"))  # one customer's, by name
    assert "Support answered within the hour" in one and "comment number" not in one
    first = bot.command("feedback detractors")
    seen = text_of(first)
    assert first["blocks"][0]["text"]["text"] == "Comments 1-10 of 15"
    assert seen.count(":red_circle:") == 10  # the ten detractors (0-6) before the others
    (more,) = [b for b in first["blocks"] if b.get("block_id") == "more"]
    button = more["elements"][0]
    assert json.loads(button["value"]) == "feedback detractors page 2"
    body = block_actions_body({**button}, response_url=slack.response_url("more"))
    assert bot.post(body, "application/x-www-form-urlencoded").status == 200
    (answer,) = [c for c in slack.wait_for("response_url", count=3) if c.path.endswith("more")]
    assert answer.body["blocks"][0]["text"]["text"] == "Comments 11-15 of 15"


def test_an_owner_mention_as_slack_sends_it(bot, customers):
    from tests.slack.conftest import OWNER

    answer = bot.command(f"segment owner:<@{OWNER}|sari>")
    assert answer["blocks"][0]["text"]["text"].startswith("1 customer ·")
    assert "Acme Corp" in text_of(answer)


def test_an_export_asked_for_in_a_dm_lands_in_that_dm(bot, slack, customers):
    from tests.slack.test_events import dm

    assert bot.event(dm(MEMBER, "segment plan:pro export"), event_id="EvExport").status == 200
    (post,) = slack.wait_for("chat.postMessage")
    assert "I sent you *segment-plan.csv* in a DM" in text_of(post.body)
    (done,) = slack.calls_to("files.completeUploadExternal")
    assert done.body["channel_id"] == f"D{MEMBER[1:]}"  # the conversation with the bot
    assert len(slack.uploads) == 1
