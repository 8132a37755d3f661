"""Several copies of the bot on one PostgreSQL, behind one address (issue 11, point 3).

Three `clmbot run --http --port 0` processes start at once on an empty schema (they take
turns upgrading it), behind a round-robin front, against one Slack stand-in. Then:
commands through the front are answered and audited once each; a request replayed to
another copy is refused there; the morning digest that every copy's start-up runs is posted
once; and 300 surveys are each sent once although the copy that sent the 100th is killed
with SIGKILL while Slack holds that message, and a new copy joins in its place.

The copies' clock is the real one moved by the test (see `copies_support`): the dead copy's
claims are taken over once their lease has run out, two minutes later by that clock.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from clmbot.config import Settings
from clmbot.importing.runner import import_file
from clmbot.slack.app import make_client
from clmbot.slack.survey_sender import (
    POST_TIMEOUT_SECONDS,
    RATE_LIMIT_WAIT_SECONDS,
    SendReport,
    SurveySender,
)
from clmbot.store import migrate
from clmbot.store.db import make_engine
from clmbot.store.models import AuditEntry, Customer, Digest, RiskRun, SeenRequest, Survey
from clmbot.surveys import outbox
from tests.conftest import NOW
from tests.fakeslack import (
    SECRET,
    Reply,
    event_body,
    post,
    signed_headers,
    slash_command_body,
)
from tests.helpers import until
from tests.slack.conftest import ADMIN, MEMBER
from tests.slack.copies_support import Front, HoldingSlack, set_clock, survey_of
from tests.slack.surveys import (
    ANA,
    answers,
    click,
    dm_channel,
    posts_to,
    surveys,
    two_customers,
)
from tests.slack.test_commands import text_of
from tests.slack.test_survey_sender import killed_while_posting_one, queue_all

REPO = Path(__file__).parents[2]
COPIES = 3
SURVEYED = 300
HOLD_AT = 100  # the survey question Slack holds until its sender has been killed
ALERTS = "C0ALERTS"
MOVED = 6  # customers moved by hand through the front, one audit row each


class Copy:
    """One `clmbot run --http --port 0` process; its log goes to a file (a pipe nobody reads
    would fill and stop it)."""

    def __init__(self, name: str, env: dict[str, str], folder: Path, clock_file: Path) -> None:
        self.name = name
        self.token = env["SLACK_BOT_TOKEN"]
        self.log = folder / f"{name}.log"
        self._out = self.log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.slack.copies_support", str(clock_file)],
            env=env,
            cwd=folder,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.port = 0

    def said(self) -> str:
        return self.log.read_text()

    def wait_until_up(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            found = re.search(r"HTTP mode on port (\d+)", self.said())
            if found:
                self.port = int(found[1])
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{self.name} did not come up; it said:\n{self.said()}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._out.close()


@pytest.fixture
def pg_url(db_url: str) -> str:
    if not db_url.startswith("postgresql"):
        pytest.skip("several copies of the bot share one PostgreSQL, not a SQLite file")
    return db_url


@pytest.fixture
def slack() -> Iterator[HoldingSlack]:
    fake = HoldingSlack(hold_at=HOLD_AT)
    for user in (ADMIN, MEMBER, *(person(i) for i in range(SURVEYED))):
        fake.add_user(user)
    yield fake
    fake.release()
    fake.close()


def person(i: int) -> str:
    return f"U0P{i:04d}"


class Copies:
    """The copies, the front, and what the test asks through them."""

    def __init__(self, db_url: str, slack: HoldingSlack, folder: Path) -> None:
        self.slack = slack
        self.folder = folder
        self.clock_file = folder / "clock"
        set_clock(self.clock_file, NOW)
        (folder / "clmbot.toml").write_text(
            "[surveys]\nsends_per_second = 50\n\n[alerts]\nall_quiet = true\n"
        )
        self._db_url = db_url
        self.running: list[Copy] = []
        self.gone: list[Copy] = []
        self._answers = 0

    def start(self, n: int, *, wait: bool = True) -> list[Copy]:
        first = len(self.running) + len(self.gone)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CLMBOT_"))}
        started = []
        for i in range(first, first + n):
            env_i = {
                **env,
                "DATABASE_URL": self._db_url,
                "SLACK_API_URL": self.slack.url,
                "SLACK_BOT_TOKEN": f"xoxb-copy-{i}",
                "SLACK_SIGNING_SECRET": SECRET,
                "CLMBOT_ADMINS": ADMIN,
                "CLMBOT_ALERT_CHANNEL": ALERTS,
                "PYTHONPATH": str(REPO),
                "PYTHONUNBUFFERED": "1",
            }
            started.append(Copy(f"copy-{i}", env_i, self.folder, self.clock_file))
        self.running += started
        if wait:
            self.wait_until_up(started)
        return started

    def wait_until_up(self, started: list[Copy]) -> None:
        deadline = time.monotonic() + 60
        for copy in started:
            copy.wait_until_up(deadline)

    def now(self) -> datetime:
        """The copies' clock."""
        offset = float(self.clock_file.read_text())
        return datetime.now(UTC) + timedelta(seconds=offset)

    def kill(self, copy: Copy) -> None:
        copy.proc.send_signal(signal.SIGKILL)
        assert copy.proc.wait(timeout=10) == -signal.SIGKILL
        self.running.remove(copy)
        self.gone.append(copy)

    def signed(self, text: str, user: str = ADMIN) -> tuple[str, dict[str, str], str]:
        """A slash command as Slack would send it: body, headers, and its response URL's
        name."""
        self._answers += 1
        name = f"r{self._answers}"
        body = slash_command_body(text, response_url=self.slack.response_url(name), user=user)
        return body, signed_headers(body, content_type="application/x-www-form-urlencoded"), name

    def answer(self, name: str) -> dict:
        def found() -> list:
            return [c for c in self.slack.calls_to("response_url") if c.path.endswith("/" + name)]

        (call,) = until(f"the answer {name}", found)  # type: ignore[misc]
        return call.body

    def close(self) -> None:
        for copy in self.running + self.gone:
            copy.close()


def count(engine: Engine, table: type, *where: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar())


def import_customers(engine: Engine, db_url: str, folder: Path) -> None:
    path = folder / "customers.csv"
    lines = ["external_id,name,slack_user_id,stage,timezone,plan"]
    lines += [f"P{i},Person {i},{person(i)},retention,UTC,pro" for i in range(SURVEYED)]
    lines += [f"M{i},Moved {i},,purchase,UTC,free" for i in range(MOVED)]
    path.write_text("\n".join(lines) + "\n")
    import_file(
        engine, "customers", path, Settings(database_url=db_url), now=NOW - timedelta(days=400)
    )


def test_copies_behind_one_address_share_the_work_and_lose_nothing(pg_url, slack, tmp_path):
    copies = Copies(pg_url, slack, tmp_path)
    engine = make_engine(pg_url)
    front: Front | None = None
    try:
        # At once, on an empty schema: they take turns upgrading it. The customers go in
        # once it is upgraded, while the copies finish starting.
        first = copies.start(COPIES, wait=False)
        until(
            "the schema upgraded",
            lambda: migrate.current_revision(engine) == migrate.head_revision(),
            timeout=60,
        )
        import_customers(engine, pg_url, tmp_path)
        copies.wait_until_up(first)
        front = Front([c.port for c in copies.running])

        # (a) Commands through the one address, to every copy in turn: answered, and each
        # write audited once, whichever copy took it.
        sent: list[tuple[str, dict[str, str], str]] = []
        for i in range(MOVED):
            body, headers, name = copies.signed(f"stage M{i} retention renewed")
            assert post(front.url + "/slack/events", body, headers) == Reply(200, "")
            sent.append((body, headers, name))
        body, headers, look = copies.signed("customer P7", user=MEMBER)
        assert post(front.url + "/slack/events", body, headers).status == 200
        for i, (_, _, name) in enumerate(sent):
            assert f"Moved *Moved {i}* from purchase to *retention*" in text_of(copies.answer(name))
        assert "Person 7" in text_of(copies.answer(look))
        assert set(front.sent_to) == set(range(COPIES))  # every copy took some
        assert count(engine, AuditEntry) == MOVED
        assert count(engine, AuditEntry, AuditEntry.action == "stage") == MOVED

        # (b) The same signed request again, to each copy (and through the front): refused
        # by every one of them, the one that took it and the others.
        body, headers, name = sent[0]
        for copy in copies.running:
            assert post(copy.url + "/slack/events", body, headers).status == 401, copy.name
        assert post(front.url + "/slack/events", body, headers).status == 401
        assert count(engine, AuditEntry) == MOVED
        assert count(engine, SeenRequest) == MOVED + 1  # what every copy refuses by
        assert len([c for c in slack.calls_to("response_url") if c.path.endswith("/r1")]) == 1

        # A DM command whose delivery Slack retries (its ack was late), each try reaching
        # another copy: the event id is taken once, whichever copy it reached (see the end).
        dm = {
            "type": "message",
            "channel_type": "im",
            "channel": f"D{MEMBER}",
            "user": MEMBER,
            "text": "customer P3",
            "ts": f"{time.time():.6f}",
        }
        body = event_body(dm, event_id="EvCopies1")
        for retry in (None, 1, 2):
            headers = signed_headers(body, content_type="application/json")
            if retry is not None:
                headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "timeout"}
            assert post(front.url + "/slack/events", body, headers).status == 200

        # (d) 300 surveys queued through the front; Slack holds the 100th question, the copy
        # that sent it is killed while it waits, and a new copy joins.
        body, headers, name = copies.signed("survey nps plan:pro confirm")
        assert post(front.url + "/slack/events", body, headers).status == 200
        assert f"Queued *{SURVEYED} NPS surveys*" in text_of(copies.answer(name))
        assert count(engine, AuditEntry, AuditEntry.action == "survey queue") == 1
        assert slack.holding.wait(timeout=30), "the 100th survey question never came"
        held = slack.held
        assert held is not None
        with engine.connect() as conn:
            worker = conn.execute(
                select(Survey.claimed_by).where(Survey.id == held["survey_id"])
            ).scalar_one()
        pid = int(worker.split(":")[-2])
        (victim,) = [c for c in copies.running if c.proc.pid == pid]
        copies.kill(victim)  # SIGKILL, mid-batch: its other claims are unsent
        slack.release()  # Slack answers, to no one: the message stays in the DM
        posts_before = len(slack.calls_to("chat.postMessage"))
        (joined,) = copies.start(1, wait=False)  # it joins while the others go on

        # Everything not claimed by the dead copy is sent; its claims wait out their lease.
        def settled() -> bool:
            with engine.connect() as conn:
                left = conn.execute(
                    select(Survey.status, Survey.claimed_by).where(Survey.status != "sent")
                ).all()
            return all(row == ("sending", worker) for row in left)

        until("the live copies sent all but the dead copy's claims", settled)
        copies.wait_until_up([joined])
        with engine.connect() as conn:
            orphans = set(
                conn.execute(
                    select(Survey.id).where(Survey.claimed_by == worker, Survey.status == "sending")
                ).scalars()
            )
        assert held["survey_id"] in orphans  # and the rest of its batch, not sent yet
        # The lease runs out (the copies' clock moves on 2 minutes): another copy takes them.
        copies_now = copies.now()
        set_clock(copies.clock_file, copies_now + outbox.LEASE + timedelta(seconds=1))
        until(
            "every survey sent",
            lambda: count(engine, Survey, Survey.status == "sent") == SURVEYED,
            timeout=40,
        )

        # Each survey was asked once: one question per survey id, one message per DM.
        asked = Counter(
            survey_of(c.body)
            for c in slack.calls_to("chat.postMessage")
            if survey_of(c.body) is not None
        )
        assert len(asked) == SURVEYED and set(asked.values()) == {1}
        assert all(len(slack.messages[f"D0P{i:04d}"]) == 1 for i in range(SURVEYED))
        # The question in flight at the kill had reached Slack: it was found in the DM, not
        # sent again, and recorded with the message Slack had made.
        with engine.connect() as conn:
            found = conn.execute(
                select(Survey.channel_id, Survey.message_ts, Survey.claimed_by).where(
                    Survey.id == held["survey_id"]
                )
            ).one()
        assert (found.channel_id, found.message_ts) == (held["channel"], held["ts"])
        assert found.claimed_by != worker
        assert any(
            c.body.get("channel") == held["channel"]
            for c in slack.calls_to("conversations.history")
        )
        # After the kill, only the living posted.
        after = slack.calls_to("chat.postMessage")[posts_before:]
        tokens = {c.headers.get("Authorization") for c in after}
        assert f"Bearer {victim.token}" not in tokens
        assert tokens <= {f"Bearer {c.token}" for c in copies.running}
        # The dead copy's claims were all taken over by the living.
        assert count(engine, Survey, Survey.id.in_(orphans), Survey.claimed_by == worker) == 0

        # (c) Every copy runs the morning's job as it starts (three at once, then the new
        # one): one risk pass, one digest row, one message in the channel.
        day = NOW.date()
        assert count(engine, RiskRun) == 1 and count(engine, RiskRun, RiskRun.day == day) == 1
        assert count(engine, Digest) == 1
        top = [c for c in slack.calls_to("chat.postMessage") if c.body.get("channel") == ALERTS]
        assert len([c for c in top if not c.body.get("thread_ts")]) == 1
        # The DM whose delivery Slack retried to the other copies was answered once.
        dms = [
            c for c in slack.calls_to("chat.postMessage") if c.body.get("channel") == f"D{MEMBER}"
        ]
        assert len(dms) == 1 and "Person 3" in text_of(dms[0].body)

        # The copies still running stop cleanly.
        for copy in copies.running:
            copy.proc.send_signal(signal.SIGTERM)
        for copy in copies.running:
            assert copy.proc.wait(timeout=30) == 0, copy.said()
        assert joined.proc.returncode == 0
        for copy in copies.running + copies.gone:
            assert "Traceback" not in copy.said(), copy.said()
    finally:
        slack.release()
        if front is not None:
            front.close()
        copies.close()
        engine.dispose()


def test_a_long_rate_limit_puts_the_survey_back_rather_than_outlast_the_lease(
    engine, slack, bot_settings, tmp_path
):
    """A post must land within the lease its renewal began: a sender that sat out a long
    Retry-After past it could post after another copy had looked in the DM, found nothing,
    and posted the same survey. Such a limit puts the survey back in the queue instead."""
    # The longest a post may take (a slow first try, the waits, a slow last try): half a lease.
    longest = 2 * POST_TIMEOUT_SECONDS + RATE_LIMIT_WAIT_SECONDS
    assert longest <= outbox.LEASE.total_seconds() / 2
    two_customers(engine, bot_settings, tmp_path, slack)
    with engine.begin() as conn:
        conn.execute(Customer.__table__.delete().where(Customer.external_id == "J1"))
    queue_all(engine, bot_settings)
    slack.fail("chat.postMessage", 429, retry_after=int(outbox.LEASE.total_seconds()) + 60)
    sender = SurveySender(engine, make_client(bot_settings), bot_settings)
    reports: list[SendReport] = []
    run = threading.Thread(target=lambda: reports.append(sender.run_once(NOW)), daemon=True)
    run.start()
    run.join(timeout=15)
    assert not run.is_alive(), "the sender sat out the Retry-After"
    (report,) = reports
    assert (report.sent, report.deferred) == (0, 1)
    ((status, not_before),) = surveys(engine, "status", "not_before")
    assert status == "queued" and not_before >= NOW + outbox.LEASE + timedelta(seconds=60)
    assert len(slack.calls_to("chat.postMessage")) == 1
    # A short one is still waited out within the same run.
    slack.fail("chat.postMessage", 429, retry_after=0)
    assert sender.run_once(not_before).sent == 1


def test_a_click_on_a_question_whose_sender_was_killed_before_marking_it_counts(
    db_url, engine, slack, bot_settings, tmp_path, bot
):
    """The copy that posted the question was killed while Slack answered: the row still
    says `sending` until another copy takes the claim over, a lease later. The customer's
    click in that time is their answer, and the copy that takes over sends nothing."""
    killed_while_posting_one(db_url, engine, slack, bot_settings, tmp_path)
    slack.delay("chat.postMessage", 0)
    assert surveys(engine, "status") == [("sending",)]
    click(bot, ANA, 9)
    (redrawn,) = slack.wait_for("chat.update")
    assert "closed" not in redrawn.body["text"] and "9" in str(redrawn.body["blocks"])
    assert surveys(engine, "status", "score", "language") == [("answered", 9, "en")]
    assert answers(engine) == [(1, "nps", 9, None, "survey")]
    report = SurveySender(engine, make_client(bot_settings), bot_settings).run_once(
        NOW + outbox.LEASE + timedelta(seconds=1)
    )
    assert (report.sent, report.found, report.cancelled) == (0, 0, 0)
    assert len(posts_to(slack, dm_channel(ANA))) == 1
