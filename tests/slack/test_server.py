import contextlib
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from clmbot.config import Settings
from tests.fakeslack import SECRET, get, slash_command_body
from tests.helpers import rows
from tests.slack.conftest import start_bot


def test_a_bad_signature_is_401_and_nothing_runs(bot, slack):
    body = slash_command_body("help", response_url=slack.response_url())
    reply = bot.post(body, "application/x-www-form-urlencoded", secret="0" * 32)
    assert reply.status == 401
    time.sleep(0.2)  # nothing may arrive late either
    assert slack.calls_to("response_url") == []


def test_a_timestamp_older_than_5_minutes_is_401(bot, slack):
    body = slash_command_body("help", response_url=slack.response_url())
    reply = bot.post(body, "application/x-www-form-urlencoded", timestamp=int(time.time()) - 6 * 60)
    assert reply.status == 401
    assert slack.calls_to("response_url") == []


def test_healthz_is_200_when_the_database_answers(bot):
    reply = get(bot.url + "/healthz")
    assert reply.status == 200
    assert json.loads(reply.body) == {"ok": True, "database": "ok"}


def test_healthz_is_503_when_the_database_does_not(engine, clock, slack, tmp_path):
    from clmbot.store.db import make_engine

    broken = make_engine(f"sqlite:///{tmp_path}/missing-dir/none.db")
    settings = Settings(
        database_url="sqlite://",
        slack_bot_token="xoxb-t",
        slack_signing_secret=SECRET,
        slack_api_url=slack.url,
    )
    under_test, stop = start_bot(broken, settings, clock, slack)
    try:
        reply = get(under_test.url + "/healthz")
    finally:
        stop()
    assert reply.status == 503
    assert json.loads(reply.body)["ok"] is False


def test_other_paths_are_404(bot):
    assert get(bot.url + "/").status == 404


def test_a_body_over_1_mb_is_refused_before_it_is_read(bot):
    """The server answers 413 having read only the headers: the client is still sending."""
    import socket
    from urllib.parse import urlparse

    port = urlparse(bot.url).port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /slack/events HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 50000000\r\n\r\n" + b"a" * 1000
        )
        answer = sock.recv(4096).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 413")


def test_a_timestamp_that_is_not_a_number_is_401(bot, slack):
    from tests.fakeslack import post

    body = slash_command_body("help", response_url=slack.response_url())
    for stamp in ("abc", "1e9", "-5", "", "\xb2", "9" * 40):
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": "v0=" + "0" * 64,
        }
        assert post(bot.url + "/slack/events", body, headers).status == 401
    assert slack.calls_to("response_url") == []


def test_refused_requests_leave_no_request_data_in_the_log(bot, slack, caplog):
    import logging

    from tests.fakeslack import post

    secret_words = "customer jane@secret.example"
    body = slash_command_body(secret_words, response_url=slack.response_url("leak"))
    with caplog.at_level(logging.DEBUG):
        bot.post(body, "application/x-www-form-urlencoded", secret="0" * 32)  # bad signature
        bot.post(body, "application/x-www-form-urlencoded", timestamp=int(time.time()) - 3600)
        post(
            bot.url + "/slack/events",
            body,
            {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": "x"},
        )
        # refused before it is read: the server may hang up while the client still sends
        with contextlib.suppress(OSError):
            post(bot.url + "/slack/events", "x" * 2_000_000, {"Content-Type": "text/plain"})
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "refused a request" in logged
    for leak in ("jane@secret.example", "/response/leak", "v0=", "xxxxxxxx"):
        assert leak not in logged


def test_healthz_says_503_without_the_database_error(engine, clock, slack, tmp_path):
    from clmbot.store.db import make_engine

    broken = make_engine(f"sqlite:///{tmp_path}/missing-dir/none.db")
    settings = Settings(
        database_url="sqlite://",
        slack_bot_token="xoxb-t",
        slack_signing_secret=SECRET,
        slack_api_url=slack.url,
    )
    under_test, stop = start_bot(broken, settings, clock, slack)
    try:
        reply = get(under_test.url + "/healthz")
    finally:
        stop()
    assert reply.status == 503
    assert json.loads(reply.body) == {"ok": False, "database": "unavailable"}


def test_a_replayed_request_is_not_run_again(bot, slack, engine, customers):
    """The same signed bytes, sent again within five minutes, must not undo a later move."""
    from tests.fakeslack import post, signed_headers
    from tests.helpers import rows
    from tests.slack.conftest import ADMIN

    first = slash_command_body(
        "stage A1 retention", response_url=slack.response_url("m1"), user=ADMIN
    )
    headers = signed_headers(first, content_type="application/x-www-form-urlencoded")
    assert post(bot.url + "/slack/events", first, headers).status == 200
    slack.wait_for("response_url", count=1)
    later = slash_command_body(
        "stage A1 advocacy", response_url=slack.response_url("m2"), user=ADMIN
    )
    later_headers = signed_headers(later, content_type="application/x-www-form-urlencoded")
    assert post(bot.url + "/slack/events", later, later_headers).status == 200
    slack.wait_for("response_url", count=2)
    replay = post(bot.url + "/slack/events", first, headers)
    assert replay.status == 401
    time.sleep(0.3)
    assert len(slack.calls_to("response_url")) == 2
    moves = [m for m in rows(engine, "stage_history", "to_stage", "by") if m[1] == ADMIN]
    assert sorted(moves) == [("advocacy", ADMIN), ("retention", ADMIN)]
    assert ("A1", "advocacy") in rows(engine, "customers", "external_id", "stage")


def test_a_replay_is_refused_by_another_copy_of_the_bot(engine, bot, bot_with, slack):
    from tests.fakeslack import post, signed_headers

    other = bot_with()
    body = slash_command_body("help", response_url=slack.response_url("h1"))
    headers = signed_headers(body, content_type="application/x-www-form-urlencoded")
    assert post(bot.url + "/slack/events", body, headers).status == 200
    assert post(other.url + "/slack/events", body, headers).status == 401


def test_a_burst_of_200_slash_commands_is_all_acknowledged(bot, slack):
    """Slack sends what people type when they type it: 200 at once must all get their ack
    (Slack shows an error to anyone whose ack takes over 3 seconds)."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.fakeslack import post, signed_headers

    def one(i: int) -> tuple[int, float]:
        body = slash_command_body(f"help {i}", response_url=slack.response_url(f"b{i}"))
        headers = signed_headers(body, content_type="application/x-www-form-urlencoded")
        started = time.monotonic()
        try:
            status = post(bot.url + "/slack/events", body, headers).status
        except OSError:
            status = -1
        return status, time.monotonic() - started

    with ThreadPoolExecutor(max_workers=200) as pool:
        results = list(pool.map(one, range(200)))
    assert [s for s, _ in results].count(200) == 200
    assert len(slack.wait_for("response_url", count=200, timeout=60)) == 200


def test_a_signed_body_that_is_not_utf8_is_400_and_nothing_runs(bot, slack):
    import hmac
    import urllib.request
    from hashlib import sha256

    body = b"token=x&command=%2Fclm&text=\xff\xfe&user_id=U0MEMBER"
    stamp = str(int(time.time()))
    signature = (
        "v0=" + hmac.new(SECRET.encode(), b"v0:" + stamp.encode() + b":" + body, sha256).hexdigest()
    )
    request = urllib.request.Request(
        bot.url + "/slack/events",
        data=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature,
        },
        method="POST",
    )
    try:
        status = urllib.request.urlopen(request, timeout=10).status
    except urllib.error.HTTPError as exc:
        status = exc.code
    assert status == 400
    time.sleep(0.2)
    assert slack.calls_to("response_url") == []


def test_a_replay_dressed_as_a_slack_retry_is_still_refused(bot, slack, engine, customers):
    """The retry number and the content type are not signed: they may not make an old
    request new, unless it is an event callback, which its event id keeps from acting twice."""
    from tests.fakeslack import post, signed_headers
    from tests.helpers import rows
    from tests.slack.conftest import ADMIN

    first = slash_command_body(
        "stage A1 retention", response_url=slack.response_url("m1"), user=ADMIN
    )
    headers = signed_headers(first, content_type="application/x-www-form-urlencoded")
    assert post(bot.url + "/slack/events", first, headers).status == 200
    slack.wait_for("response_url", count=1)
    for content_type in (
        "application/x-www-form-urlencoded",
        "application/jsonp",
        "application/json",
    ):
        for retry in ("1", "2"):
            dressed = {**headers, "Content-Type": content_type, "X-Slack-Retry-Num": retry}
            assert post(bot.url + "/slack/events", first, dressed).status == 401
    time.sleep(0.3)
    assert len(slack.calls_to("response_url")) == 1
    assert [m for m in rows(engine, "stage_history", "by") if m == (ADMIN,)] == [(ADMIN,)]


def test_a_signed_body_bolt_cannot_read_is_400_without_a_traceback(bot, slack, capfd):
    from tests.fakeslack import post, signed_headers

    for body in ("{not json", "[1, 2]", '"a string"', "text=help&user_id=U0MEMBER"):
        headers = signed_headers(body, content_type="application/json")
        assert post(bot.url + "/slack/events", body, headers).status in (400, 404)
    assert "Traceback" not in capfd.readouterr().err


def test_an_import_holding_sqlite_does_not_hold_up_the_acknowledgements(
    bot, bot_with, slack, engine, db_url
):
    """A long import holds SQLite's write lock; the replay record must not wait for it, and
    a replay sent meanwhile to another process is refused all the same: the requests taken
    are kept in a file of their own, private like the database."""
    import os
    import stat
    import threading

    from tests.fakeslack import post, signed_headers

    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite's single writer")
    other = bot_with()
    own = Path(f"{make_url(db_url).database}-replay")
    assert stat.S_IMODE(os.stat(own).st_mode) == 0o600
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with engine.begin() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(10)
    try:
        started = time.monotonic()
        bot.command("help", wait=False)
        assert time.monotonic() - started < 3
        body = slash_command_body("help", response_url=slack.response_url("during"))
        headers = signed_headers(body, content_type="application/x-www-form-urlencoded")
        assert post(bot.url + "/slack/events", body, headers).status == 200
        assert post(other.url + "/slack/events", body, headers).status == 401
    finally:
        release.set()
        holder.join()
    # and the connections it used wait as long as ever for other writes
    for _ in range(3):
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000


def test_a_link_planted_where_the_requests_are_kept_is_not_followed(
    engine, db_url, tmp_path, caplog
):
    """Someone who can write beside the database plants a link at `<file>-replay`: the
    requests are then kept in the database itself, and the link's target is left as it was."""
    from clmbot.slack.server import ReplayGuard

    if not db_url.startswith("sqlite"):
        pytest.skip("a file beside a SQLite database")
    target = tmp_path / "precious"
    target.write_bytes(b"not a database")
    Path(f"{make_url(db_url).database}-replay").symlink_to(target)
    guard = ReplayGuard(engine, lambda: datetime.now(UTC))
    try:
        assert guard.first_time("v0=abc") and not guard.first_time("v0=abc")
    finally:
        guard.close()
    assert target.read_bytes() == b"not a database"
    assert rows(engine, "slack_requests", "signature_hash")  # kept in the database instead
    assert "a link?" in caplog.text


def test_what_a_process_remembers_of_requests_is_five_minutes_and_at_most_so_many(
    engine, monkeypatch
):
    """Its own memory of the requests taken forgets the oldest as it goes: rebuilt whole on
    every request once it held 10,000, it stalled the acknowledgements under load."""
    from datetime import timedelta

    from clmbot.slack import server

    now = [datetime(2026, 3, 2, 9, 0, tzinfo=UTC)]
    guard = server.ReplayGuard(engine, lambda: now[0])
    try:
        for i in range(50):
            assert guard.first_time(f"v0={i}")
            now[0] += timedelta(seconds=1)
        assert len(guard._memory) == 50
        now[0] += server.FRESH_FOR - timedelta(seconds=25)  # 0-25 s are five minutes old
        assert guard.first_time("v0=later")
        assert len(guard._memory) == 24 + 1
        monkeypatch.setattr(server, "MEMORY_MOST", 10)
        for i in range(30):
            assert guard.first_time(f"v0=more{i}")
        assert len(guard._memory) == 10
        assert not guard.first_time("v0=0")  # forgotten here, refused by the database
    finally:
        guard.close()


def test_the_requests_taken_are_pruned_after_ten_minutes(engine):
    """On both databases (on PostgreSQL through the guard's own pool, statements sent as
    they are): the old ones go, the ones still within reach of a replay stay."""
    from datetime import timedelta

    from sqlalchemy import func, select

    from clmbot.slack import server
    from clmbot.store.models import SeenRequest

    now = [datetime(2026, 3, 2, 9, 0, tzinfo=UTC)]
    guard = server.ReplayGuard(engine, lambda: now[0])
    try:
        assert guard.first_time("v0=old")
        now[0] += timedelta(minutes=6)
        assert guard.first_time("v0=recent")
        now[0] += timedelta(minutes=5)  # "old" is 11 minutes old, "recent" 5
        assert guard.first_time("v0=new")
        with guard._engine.connect() as conn:
            kept = conn.execute(select(func.count()).select_from(SeenRequest)).scalar()
        assert kept == 2
    finally:
        guard.close()
