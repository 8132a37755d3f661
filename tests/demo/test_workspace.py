"""The demo's Slack: what the bot's calls get back, and what it keeps to show."""

from __future__ import annotations

import os

import pytest
from slack_sdk.errors import SlackApiError

from clmbot.demo.people import BY_NAME, TEAM_ID
from clmbot.demo.workspace import Contact, Edited, Posted, Uploaded, Workspace


@pytest.fixture
def slack(tmp_path) -> Workspace:
    made = Workspace(tmp_path)
    made.contacts["UC0000001"] = Contact("C0001", "Acme", "Asia/Jakarta", "id")
    return made


def test_a_post_to_a_user_lands_in_their_dm_and_can_be_found_by_its_metadata(slack):
    meta = {"event_type": "clmbot_survey", "event_payload": {"survey_id": 7}}
    sent = slack.chat_postMessage(channel="UC0000001", text="hi", blocks=[], metadata=meta)
    assert sent["channel"] == "DUC0000001"
    history = slack.conversations_history(channel="DUC0000001", include_all_metadata=True)
    assert history["messages"][0]["metadata"] == meta
    assert slack.channel_name("DUC0000001") == "DM with Acme (C0001)"
    assert [type(s) for s in slack.take_unseen()] == [Posted] and slack.take_unseen() == []


def test_an_edit_keeps_what_it_replaced(slack):
    ts = slack.chat_postMessage(channel="C0ALERTS1", text="a", blocks=[{"type": "divider"}])["ts"]
    slack.take_unseen()
    slack.chat_update(channel="C0ALERTS1", ts=ts, text="b", blocks=[])
    (edit,) = slack.take_unseen()
    assert isinstance(edit, Edited) and edit.before == [{"type": "divider"}] and edit.after == []
    with pytest.raises(SlackApiError):
        slack.chat_update(channel="C0ALERTS1", ts="1.2", text="c")


def test_people_are_known_as_slack_would_tell_the_gatekeeper(slack):
    guest = slack.users_info(user=BY_NAME["gina"].slack_id)["user"]
    assert guest["is_restricted"] and guest["team_id"] == TEAM_ID
    customer = slack.users_info(user="UC0000001")["user"]
    assert customer["tz"] == "Asia/Jakarta"
    with pytest.raises(SlackApiError) as raised:
        slack.users_info(user="U0NOBODY1")
    assert raised.value.response["error"] == "user_not_found"


def test_an_upload_is_a_private_file_that_never_follows_a_planted_link(slack, tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    (tmp_path / "chart.png").symlink_to(target)
    slack.files_upload_v2(channel="C0RETAIN1", file=b"png", filename="chart.png", title="Chart")
    (uploaded,) = slack.take_unseen()
    assert isinstance(uploaded, Uploaded) and uploaded.path == tmp_path / "chart.png"
    assert not uploaded.path.is_symlink() and uploaded.path.read_bytes() == b"png"
    assert target.read_text() == "keep"
    assert os.stat(uploaded.path).st_mode & 0o777 == 0o600


def test_a_folder_that_cannot_be_written_is_slack_refusing_the_upload(tmp_path):
    slack = Workspace(tmp_path / "gone")
    with pytest.raises(SlackApiError) as raised:
        slack.files_upload_v2(channel="C0RETAIN1", file=b"png", filename="c.png", title="C")
    assert raised.value.response["error"] == "not_writable"
