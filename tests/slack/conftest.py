"""The real Bolt app behind the real HTTP server, on a free port, against the Slack
stand-in; a clock the tests move by hand."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from clmbot.config import Settings
from clmbot.importing.runner import import_file
from clmbot.slack.app import Bot, build_app
from clmbot.slack.server import HttpServer, wsgi_app
from tests.conftest import NOW
from tests.fakeslack import (
    SECRET,
    FakeSlack,
    Reply,
    event_body,
    post,
    signed_headers,
    slash_command_body,
)

ADMIN = "U0ADMIN"
MEMBER = "U0MEMBER"
OWNER = "U0OWNER1"


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def slack():
    fake = FakeSlack()
    fake.add_user(ADMIN)
    fake.add_user(MEMBER)
    yield fake
    fake.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@dataclass
class BotUnderTest:
    url: str
    slack: FakeSlack
    bot: Bot
    settings: Settings
    _n: list[int] = field(default_factory=lambda: [0])

    def command(
        self,
        text: str,
        *,
        user: str = MEMBER,
        team: str = "T0TEAM",
        channel: str = "C0GENERAL",
        wait: bool = True,
    ) -> dict:
        """Type `/clm text`; returns what the response URL received (the user's answer)."""
        self._n[0] += 1
        name = f"r{self._n[0]}"
        body = slash_command_body(
            text, response_url=self.slack.response_url(name), user=user, team=team, channel=channel
        )
        reply = self.post(body, "application/x-www-form-urlencoded")
        assert reply.status == 200, reply
        assert reply.body == ""  # an empty ack: the answer comes through the response URL
        if not wait:
            return {}
        calls = [
            c
            for c in self.slack.wait_for("response_url", count=self._n[0])
            if c.path.endswith(name)
        ]
        return calls[0].body

    def event(self, event: dict, *, event_id: str, retry: int | None = None) -> Reply:
        body = event_body(event, event_id=event_id)
        headers = signed_headers(body, content_type="application/json")
        if retry is not None:
            headers["X-Slack-Retry-Num"] = str(retry)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        return post(self.url + "/slack/events", body, headers)

    def post(self, body: str, content_type: str, **sign: object) -> Reply:
        headers = signed_headers(body, content_type=content_type, **sign)
        return post(self.url + "/slack/events", body, headers)


def start_bot(engine, settings: Settings, clock: Clock, slack: FakeSlack):
    executor = ThreadPoolExecutor(max_workers=4)
    app, bot = build_app(settings, engine, clock=clock, executor=executor)
    server = HttpServer(
        wsgi_app(app, engine, settings.slack_signing_secret), host="127.0.0.1", port=0, tick=0.05
    )
    port = server.start()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    under_test = BotUnderTest(f"http://127.0.0.1:{port}", slack, bot, settings)

    def stop() -> None:
        server.stop()
        executor.shutdown(wait=True)
        bot.stop()

    return under_test, stop


@pytest.fixture
def bot_settings(db_url, slack) -> Settings:
    return Settings(
        database_url=db_url,
        slack_bot_token="xoxb-test-token",
        slack_signing_secret=SECRET,
        slack_api_url=slack.url,
        admins=(ADMIN,),
    )


@pytest.fixture
def bot(engine, bot_settings, clock, slack):
    under_test, stop = start_bot(engine, bot_settings, clock, slack)
    yield under_test
    stop()


@pytest.fixture
def bot_with(engine, clock, slack, bot_settings):
    """A bot with other settings: `bot_with(team=("S0CS",))`."""
    stops = []

    def make(**changes: object) -> BotUnderTest:
        under_test, stop = start_bot(engine, replace(bot_settings, **changes), clock, slack)
        stops.append(stop)
        return under_test

    yield make
    for stop in stops:
        stop()


SAMPLE = Path(__file__).parents[2] / "clmbot" / "sample"


@pytest.fixture
def customers(engine, bot_settings, tmp_path):
    """A few customers with history, events and feedback, as an import makes them."""
    path = tmp_path / "customers.csv"
    path.write_text(
        "external_id,name,email,stage,owner_slack_id,plan,mrr,tags\n"
        f"A1,Acme Corp,ops@acme.io,purchase,{OWNER},pro,1250.5,vip;emea\n"
        "A2,Acme Labs,,consideration,,,,\n"
        "B1,Beta Logistics,hello@beta.example,retention,,team,450,\n"
        "X1,<!channel> Evil & Co,,awareness,,,,\n"
    )
    import_file(engine, "customers", path, bot_settings, now=NOW - timedelta(days=40))
    events = tmp_path / "events.csv"
    events.write_text(
        "customer_external_id,kind,occurred_at,value\n"
        "A1,login,2026-11-20T09:00:00Z,\nA1,purchase,2026-11-01T09:00:00Z,99\n"
    )
    import_file(engine, "events", events, bot_settings, now=NOW)
    feedback = tmp_path / "feedback.csv"
    feedback.write_text(
        "customer_external_id,kind,score,comment,responded_at\n"
        "A1,nps,9,Support answered within the hour,2026-11-10T10:00:00Z\n"
        "A1,nps,6,,2026-06-01T10:00:00Z\nA1,csat,4,,2026-11-12T10:00:00Z\n"
    )
    import_file(engine, "feedback", feedback, bot_settings, now=NOW)
