"""`clmbot run` / `python bot.py` as a process: the start checks, HTTP mode, Socket Mode, and
a clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clmbot.store import migrate
from clmbot.store.db import make_engine
from tests.fakeslack import SECRET, get, post, signed_headers, slash_command_body
from tests.slack.conftest import MEMBER
from tests.slack.socketmode import SocketModeStandIn
from tests.slack.test_commands import text_of

REPO = Path(__file__).parents[2]


def bot_env(db_url: str, slack, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CLMBOT_"))}
    env.update(
        {
            "DATABASE_URL": db_url,
            "SLACK_API_URL": slack.url,
            "SLACK_BOT_TOKEN": "xoxb-test-1",
            "SLACK_SIGNING_SECRET": SECRET,
            "CLMBOT_ADMINS": "U0ADMIN",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return {k: v for k, v in env.items() if v != ""}


def start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(REPO / "bot.py"), *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_line(proc: subprocess.Popen, pattern: str, timeout: float = 30) -> re.Match:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match
    proc.kill()
    raise AssertionError(f"no line matching {pattern!r}; the bot said:\n{''.join(seen)}")


def refused(db_url, slack, tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """`python bot.py ARGS` (default: --http) that is expected to stop at the start."""
    return subprocess.run(
        [sys.executable, str(REPO / "bot.py"), *(args or ("--http",))],
        env=bot_env(db_url, slack, **env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"SLACK_BOT_TOKEN": ""}, "SLACK_BOT_TOKEN is not set"),
        ({"SLACK_BOT_TOKEN": "xoxp-user-token"}, "does not look like a bot token"),
        ({"SLACK_SIGNING_SECRET": ""}, "SLACK_SIGNING_SECRET is not set, and HTTP mode needs it"),
        ({"SLACK_SIGNING_SECRET": "secret"}, "does not look like a signing secret"),
        ({"CLMBOT_ALERT_TIME": "25:00"}, "CLMBOT_ALERT_TIME=25:00 is not a time of day"),
    ],
)
def test_a_bad_start_is_one_line_and_exit_2(db_url, slack, tmp_path, env, says):
    result = refused(db_url, slack, tmp_path, **env)
    assert result.returncode == 2
    assert says in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_a_malformed_app_token_is_refused_in_socket_mode(db_url, slack, tmp_path):
    result = refused(db_url, slack, tmp_path, "run", SLACK_APP_TOKEN="xoxb-wrong-kind")
    assert result.returncode == 2
    assert "SLACK_APP_TOKEN does not look like an app-level token" in result.stderr


def test_an_app_token_slack_refuses_stops_the_start(db_url, slack, tmp_path):
    slack.fail("apps.connections.open", 200)
    result = refused(db_url, slack, tmp_path, "run", SLACK_APP_TOKEN="xapp-1-revoked")
    assert result.returncode == 2
    assert result.stderr.startswith("clmbot: Slack refused SLACK_APP_TOKEN (fatal_error)")
    assert result.stderr.count("\n") == 1


def test_a_socket_mode_connection_that_does_not_open_stops_the_start(db_url, slack, tmp_path):
    import socket

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    slack.ws_url = f"ws://127.0.0.1:{closed.getsockname()[1]}/link"  # nobody listens there
    closed.close()
    result = refused(db_url, slack, tmp_path, "run", SLACK_APP_TOKEN="xapp-1-test")
    assert result.returncode == 2
    assert "the Socket Mode connection to Slack did not open" in result.stderr
    assert "is up" not in result.stderr


def test_a_token_slack_refuses_stops_the_start(db_url, slack, tmp_path):
    slack.fail("auth.test", 200)  # answered, but not ok
    result = refused(db_url, slack, tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("clmbot: Slack refused SLACK_BOT_TOKEN (fatal_error)")
    assert result.stderr.count("\n") == 1
    # refused before the database was touched
    assert migrate.current_revision(make_engine(db_url)) is None


def test_with_auto_migrate_off_an_old_schema_is_refused(db_url, slack, tmp_path):
    result = refused(db_url, slack, tmp_path, CLMBOT_AUTO_MIGRATE="false")
    assert result.returncode == 2
    assert "has no clmbot tables yet; run: clmbot db upgrade" in result.stderr
    assert "(CLMBOT_AUTO_MIGRATE is false)" in result.stderr  # said only when it is
    assert result.stderr.count("\n") == 1


def test_http_mode_serves_and_stops_cleanly_on_sigterm(db_url, slack, tmp_path):
    proc = start(["--http", "--port", "0"], bot_env(db_url, slack), tmp_path)
    try:
        # CLMBOT_TEAM is not set here: the start says what that means, before it is ready
        wait_for_line(proc, r"CLMBOT_TEAM is not set: every full member of the workspace can")
        port = wait_for_line(proc, r"HTTP mode on port (\d+)")[1]
        # the schema was brought up to date at start
        assert migrate.current_revision(make_engine(db_url)) == migrate.head_revision()
        base = f"http://127.0.0.1:{port}"
        assert json.loads(get(base + "/healthz").body) == {"ok": True, "database": "ok"}
        # work still running after the ack when SIGTERM comes must finish
        slack.delay("users.info", 1.5)
        body = slash_command_body("help", response_url=slack.response_url("late"), user=MEMBER)
        reply = post(
            base + "/slack/events",
            body,
            signed_headers(body, content_type="application/x-www-form-urlencoded"),
        )
        assert reply.status == 200 and reply.body == ""
        # acknowledged before the slow work: the answer cannot have been sent yet
        assert slack.calls_to("response_url") == []
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    (answer,) = slack.calls_to("response_url")
    assert "/clm customer" in text_of(answer.body)
    assert "clmbot stopped" in proc.stderr.read()


def test_socket_mode_acknowledges_and_answers_a_slash_command(db_url, slack, tmp_path):
    command = {
        "token": "legacy",
        "team_id": "T0TEAM",
        "team_domain": "acme",
        "channel_id": "C0GENERAL",
        "channel_name": "general",
        "user_id": MEMBER,
        "user_name": "member",
        "command": "/clm",
        "text": "help",
        "api_app_id": "A0CLMBOT",
        "response_url": slack.response_url("sm"),
        "trigger_id": "1.2.3",
    }
    standin = SocketModeStandIn(
        [
            {
                "envelope_id": "env-1",
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": command,
            }
        ]
    )
    slack.ws_url = standin.url
    proc = start([], bot_env(db_url, slack, SLACK_APP_TOKEN="xapp-1-test"), tmp_path)
    try:
        ready = wait_for_line(proc, r"^.*up in Socket Mode.*$")
        assert ready[0].rstrip() == "clmbot is up in Socket Mode (workspace Acme Inc, as @clmbot)"
        ack = standin.wait_for_ack("env-1")
        assert ack == {"envelope_id": "env-1"}
        (answer,) = slack.wait_for("response_url", timeout=15)
        assert answer.body["response_type"] == "ephemeral"
        assert "/clm funnel" in text_of(answer.body)
        assert slack.calls_to("apps.connections.open")[0].headers["Authorization"] == (
            "Bearer xapp-1-test"
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        said = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
        standin.close()
    assert "up in Socket Mode" not in said  # the ready line comes once
    assert "token" not in said.lower()  # no note from Bolt about a token it will not use
    assert "Context impl" not in said  # nor Alembic's chatter


def test_sigterm_lets_a_request_still_being_handled_finish(db_url, slack, tmp_path):
    """SIGTERM while a request has not even been acknowledged yet: it gets its ack, then its
    answer, and only then does the bot exit."""
    import threading

    proc = start(["--http", "--port", "0"], bot_env(db_url, slack), tmp_path)
    try:
        # CLMBOT_TEAM is not set here: the start says what that means, before it is ready
        wait_for_line(proc, r"CLMBOT_TEAM is not set: every full member of the workspace can")
        port = wait_for_line(proc, r"HTTP mode on port (\d+)")[1]
        slack.delay("auth.test", 1.5)  # Bolt asks it on the first request, before the ack
        body = slash_command_body("help", response_url=slack.response_url("slow"), user=MEMBER)
        replies = []
        request = threading.Thread(
            target=lambda: replies.append(
                post(
                    f"http://127.0.0.1:{port}/slack/events",
                    body,
                    signed_headers(body, content_type="application/x-www-form-urlencoded"),
                )
            )
        )
        request.start()
        slack.wait_for("auth.test", count=2)  # the request is in flight
        assert replies == []  # not acknowledged yet
        proc.send_signal(signal.SIGTERM)
        request.join(timeout=30)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert replies and replies[0].status == 200
    (answer,) = slack.calls_to("response_url")
    assert "/clm customer" in text_of(answer.body)


def test_a_port_already_taken_is_one_line(db_url, slack, tmp_path):
    import socket

    taken = socket.socket()
    taken.bind(("0.0.0.0", 0))
    taken.listen()
    try:
        result = refused(db_url, slack, tmp_path, "--http", "--port", str(taken.getsockname()[1]))
    finally:
        taken.close()
    assert result.returncode == 2
    assert "cannot listen on port" in result.stderr and "Traceback" not in result.stderr
