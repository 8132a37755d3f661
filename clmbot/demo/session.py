"""One demo: the sample business in its own database, the real `Bot` answering the demo's
people and customers, and a clock that only moves when told.

Every verb returns nothing and prints through `say`, in the order things happened: what
was typed, the answer, then what the bot posted because of it (a survey going out, the
team's post of an answer). Nothing here decides anything the bot does in Slack: it calls
the same `Bot` methods the Slack listeners call, with the demo's workspace as Slack.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from clmbot.config import Settings, load_settings
from clmbot.demo.people import (
    ALERT_CHANNEL,
    BY_ID,
    BY_NAME,
    COMMAND_CHANNEL,
    FEEDBACK_CHANNEL,
    PEOPLE,
    Person,
    admin_ids,
    team_ids,
)
from clmbot.demo.terminal import Button, Style, blocks_text, changed, printable
from clmbot.demo.workspace import Contact, Edited, Posted, Published, Uploaded, Workspace
from clmbot.importing.runner import import_file
from clmbot.plain import IN_CHANNEL
from clmbot.plain import render as plain_render
from clmbot.sample.business import SampleBusiness, generate
from clmbot.slack.access import Gatekeeper
from clmbot.slack.bot import Bot
from clmbot.slack.digest import run_day
from clmbot.slack.listeners.actions import button_words
from clmbot.slack.survey_sender import SendReport, SurveySender
from clmbot.slack.views.base import OPEN_PROFILE, RUN_WORDS, Message
from clmbot.slack.views.digest import ALERT_ACTION
from clmbot.slack.views.survey_dm import SURVEY_SCORE
from clmbot.store import migrate
from clmbot.store.db import make_engine

ZONE = ZoneInfo("Asia/Jakarta")
STARTS_AT = time(8, 30)  # before the morning's digest (09:00), so that `:advance` shows it
CUSTOMERS = 500
MONTHS = 18
SENDER_EVERY = timedelta(minutes=15)  # the real bot runs it every 5 s; a demo step is coarser
LONGEST_ADVANCE = timedelta(days=31)
_SPAN = re.compile(r"^(\d{1,3})\s*(m|mins?|minutes?|h|hours?|d|days?|w|weeks?)$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_SLASH = re.compile(r"^/clm(\s+|$)", re.I)
_TOML = """\
# The demo's settings (see clmbot.toml in the repository for every setting).
[display]
currency = "$"

[surveys]
product = "Demo Shop"

# The morning digest: paying customers only (leads going cold are the sales team's).
[[alerts.routes]]
name = "customers"
segment = "stage:purchase,retention,advocacy"
channel = "{channel}"
"""


class DemoError(ValueError):
    """What was typed cannot be done; the message says why and what to type instead."""


@dataclass
class Target:
    """A message whose buttons `:click N` may press: an answer only its asker sees, or a
    message posted in a channel or a customer's DM."""

    buttons: list[Button]
    channel: str | None = None  # posted (else an answer only the typist saw)
    ts: str | None = None
    seq: int = 0  # which came last


def as_slack_sends(text: str) -> str:
    """Text as Slack delivers what a person typed: &, < and > escaped (the bot unescapes
    them; without this, `mrr<100` would read as the start of a link)."""
    return html.escape(text, quote=False)


def demo_day(today: date) -> date:
    """The day the demo starts on: today, or the Friday before on a weekend, so that a
    survey queued at once can go out (customers are asked on weekdays only)."""
    return today - timedelta(days=max(today.weekday() - 4, 0))


def parse_span(text: str) -> timedelta:
    match = _SPAN.match(text.strip().lower())
    if not match:
        raise DemoError(
            f"`{text}` is not a span of time: write a number and a unit, e.g. 1d, 12h, 30m, 1w"
        )
    span = timedelta(**{_UNITS[match.group(2)[0]]: int(match.group(1))})
    if not timedelta(0) < span <= LONGEST_ADVANCE:
        raise DemoError("advance by a minute up to 31 days at a time (e.g. :advance 1d)")
    return span


class Demo:
    """The demo's state: its settings, database, Slack, bot and clock, who is typing, and
    which buttons `:click` would press. Built whole at once (the sample loaded, the morning
    before stored), so that the first line typed is answered at once."""

    def __init__(
        self,
        folder: Path,
        *,
        say: Callable[[str], None],
        style: Style,
        seed: int = 7,
        today: date,
        db: Path | None = None,
        files: Path | None = None,
        customers: int = CUSTOMERS,
    ) -> None:
        self.folder = folder
        self.say = say
        self.style = style
        self.day = demo_day(today)
        self.now = datetime.combine(self.day, STARTS_AT, tzinfo=ZONE).astimezone(UTC)
        self.me: Person = BY_NAME["sari"]
        # The last message with buttons each viewer sees: a person's own answers, the
        # team's channels, each customer's DM (by their Slack id).
        self.targets: dict[str, Target] = {}
        self._seq = 0
        self._events = 0  # the DMs customers wrote: each gets an event id, as in Slack
        database = db or folder / "demo.db"
        (folder / "clmbot.toml").write_text(_TOML.format(channel=ALERT_CHANNEL), encoding="utf-8")
        self.settings: Settings = load_settings(
            {
                "DATABASE_URL": f"sqlite:///{database}",
                "CLMBOT_TIMEZONE": ZONE.key,
                "CLMBOT_FEEDBACK_CHANNEL": FEEDBACK_CHANNEL,
                "CLMBOT_ALERT_TIME": "09:00",
                "CLMBOT_TEAM": team_ids(),
                "CLMBOT_ADMINS": admin_ids(),
            },
            cwd=folder,
            dotenv=False,
        )
        self.files = files or folder / "files"
        self.files.mkdir(mode=0o700, exist_ok=True)
        self.workspace = Workspace(self.files)
        self.engine: Engine = make_engine(self.settings.database_url, create=True)
        migrate.upgrade(self.engine)
        self.business = generate(self.day, seed=seed, customers=customers, months=MONTHS)
        self._load(self.business)
        self.bot = Bot(
            self.settings,
            self.engine,
            self.clock,
            Gatekeeper(self.workspace, self.settings, self.clock),  # type: ignore[arg-type]
        )
        self.sender = SurveySender(
            self.engine,
            self.workspace,  # type: ignore[arg-type]
            self.settings,
            worker="demo",
            sleep=lambda _seconds: None,
        )
        self.bot.sender = self.sender
        self.bot.wake_sender = self._send_now
        # Yesterday's morning pass, stored but not posted: scores to ask about at once, and
        # today's digest still to come at 09:00.
        yesterday = self.day - timedelta(days=1)
        self._daily(yesterday, post=False)

    # --- setting up --------------------------------------------------------------------------

    def _load(self, business: SampleBusiness) -> None:
        sample = self.folder / "sample"
        business.write(sample)
        for kind in ("customers", "stages", "events", "feedback"):
            report = import_file(
                self.engine, kind, sample / f"{kind}.csv", self.settings, now=self.now
            )
            if not report.ok:
                raise RuntimeError(f"the sample's {kind} did not import: {report.summary()}")
        for c in business.customers:
            if c.slack_user_id:
                self.workspace.contacts[c.slack_user_id] = Contact(
                    c.external_id, c.name, c.timezone, c.locale
                )

    def clock(self) -> datetime:
        return self.now

    def close(self) -> None:
        self.engine.dispose()

    # --- what the console shows --------------------------------------------------------------

    def names(self, some_id: str) -> str:
        """A user's or a channel's name, as Slack shows them in a message."""
        if some_id[:1] in ("C", "D", "G"):
            return self.workspace.channel_name(some_id)
        return self.workspace.person_name(some_id)

    def local(self, at: datetime | None = None) -> datetime:
        return (at or self.now).astimezone(ZONE)

    def when(self, at: datetime | None = None) -> str:
        return f"{self.local(at):%a %d %b %H:%M}"

    def banner(self) -> list[str]:
        business = self.business
        stages = dict.fromkeys(self.settings.lifecycle.stages, 0)  # in funnel order
        for c in business.customers:
            stages[c.stage] = stages.get(c.stage, 0) + 1
        example = self.example_contact()
        return [
            self.style.bold("clmbot demo") + f": {len(business.customers)} customers of a "
            f"sample shop over {MONTHS} months ("
            + ", ".join(f"{n} {s}" for s, n in stages.items())
            + ").",
            f"It is {self.local():%A %d %B %Y, %H:%M} in Jakarta; the morning digest posts at "
            f"09:00 to #customer-alerts. You are {self.me.name} ({self.me.role}).",
            f"Try: /clm funnel · /clm at-risk · /clm nps · /clm customer {example.external_id} · "
            f"/clm survey nps {example.external_id} · :advance 1d · :dm {example.external_id} 9 "
            f"great support · :click 1 · :help",
        ]

    def example_contact(self) -> Contact:
        """A customer with a Slack account who has not answered lately: one to survey."""
        recent = self.now - self.settings.surveys.cooldown
        for c in self.business.customers:
            if (
                c.slack_user_id
                and c.stage in ("retention", "advocacy")
                and not any(at >= recent for at, *_ in c.answers)
            ):
                return self.workspace.contacts[c.slack_user_id]
        return next(iter(self.workspace.contacts.values()))

    def _show_answer(self, message: Message) -> None:
        result = getattr(message, "result", None)
        if result is not None:
            text = plain_render(
                result, self.settings.timezone, prefix=IN_CHANNEL, display=self.settings.display
            )
            lines = [_named(printable(line)) for line in text.splitlines()]
            if lines:  # the answer's first line says what it is: bold on a terminal
                lines[0] = self.style.bold(lines[0])
            _, buttons = blocks_text(message.blocks, self.style, self.names)
            if buttons:  # under the text, each with what it opens when the label does not say
                lines.append(
                    "  "
                    + "  ".join(
                        self.style.button(
                            f"[{b.number}] {b.label}"
                            + (f" {b.value}" if b.action_id.startswith(OPEN_PROFILE) else "")
                        )
                        for b in buttons
                    )
                )
        else:
            lines, buttons = blocks_text(
                message.blocks, self.style, self.names, fallback=message.text
            )
        self.say(self.style.frame(f"── clmbot, only {self.me.name} sees this · {self.when()}"))
        for line in lines:
            self.say(line)
        if buttons:
            self._aim(self.me.slack_id, Target(buttons))

    def _aim(self, viewer: str, target: Target) -> None:
        self._seq += 1
        target.seq = self._seq
        self.targets[viewer] = target

    def _viewer(self, channel: str) -> str:
        """Who sees a message posted there: a customer in their DM, else the team."""
        return channel.removeprefix("D") if channel.startswith("D") else "#team"

    def flush(self) -> None:
        """What the bot posted, edited, published or uploaded since the last look."""
        for item in self.workspace.take_unseen():
            match item:
                case Posted():
                    self._show_posted(item)
                case Edited():
                    self._show_edited(item)
                case Published():
                    self._show_home(item)
                case Uploaded():
                    where = self.workspace.channel_name(item.channel)
                    self.say(f"📎 {item.title}, posted to {where}: written to {item.path}")

    def _show_posted(self, item: Posted) -> None:
        where = self.workspace.channel_name(item.channel)
        lines, buttons = blocks_text(item.blocks, self.style, self.names, fallback=item.text)
        if item.thread_ts:  # a digest's thread: one line each, the demo has no threads
            first = next((line for line in lines if line.strip()), "")
            self.say(self.style.dim(f"   ↳ a reply in the thread, from {first}"))
            return
        self.say(self.style.frame(f"── clmbot in {where} · {self.when()}"))
        for line in lines:
            self.say(line)
        if buttons:
            self._aim(self._viewer(item.channel), Target(buttons, item.channel, item.ts))

    def _show_edited(self, item: Edited) -> None:
        where = self.workspace.channel_name(item.channel)
        lines, buttons = blocks_text(
            item.after, self.style, self.names, only=changed(item.before, item.after)
        )
        self.say(self.style.frame(f"── clmbot edited its message in {where} · {self.when()}"))
        for line in lines:
            self.say(line)
        viewer = self._viewer(item.channel)
        shown = self.targets.get(viewer)
        if shown is not None and shown.ts == item.ts:  # still the one to press, redrawn
            shown.buttons = buttons

    def _show_home(self, item: Published) -> None:
        lines, buttons = blocks_text(item.blocks, self.style, self.names)
        who = self.workspace.person_name(item.user)
        self.say(self.style.frame(f"── clmbot's Home tab, as {who} sees it · {self.when()}"))
        for line in lines:
            self.say(line)
        if buttons:
            self._aim(self.me.slack_id, Target(buttons))

    # --- verbs -------------------------------------------------------------------------------

    def command(self, text: str) -> None:
        """`/clm …` (or the same words alone) typed in #retention by whoever `:as` made us,
        delivered as Slack delivers it."""
        words = text.strip()
        slash = _SLASH.match(words)
        if slash:
            words = words[slash.end() :]
        elif words.startswith("/"):
            raise DemoError("the only slash command here is /clm, e.g. /clm funnel")
        self._answer(as_slack_sends(words))

    def _answer(self, words: str | list[str]) -> None:
        user = self.me.slack_id
        message = self.bot.answer(words, user_id=user, channel_id=COMMAND_CHANNEL)
        message = self.bot.with_files(
            self.workspace,  # type: ignore[arg-type]
            message,
            user_id=user,
            channel_id=COMMAND_CHANNEL,
        )
        self.flush()  # a chart or an export, uploaded before the answer
        self._show_answer(message)
        message.sent()
        self.flush()

    def become(self, name: str) -> None:
        """Who types next: one of the demo's people, each seen by the bot as Slack shows
        them (an admin, the team, a member who is not on it, a guest)."""
        person = BY_NAME.get(name.strip().lower().lstrip("@"))
        if person is None:
            raise DemoError(
                f"no one called `{name}` here; :as one of "
                + ", ".join(f"{p.name} ({p.role})" for p in PEOPLE)
            )
        self.me = person
        self.say(f"You are {person.name} now: {person.role}.")

    def dm(self, ref: str, text: str) -> None:
        """A customer writes to the bot in their DM, as Slack would deliver it."""
        contact_id = self._contact(ref)
        contact = self.workspace.contacts[contact_id]
        if not text.strip():
            raise DemoError(f"say something: :dm {contact.external_id} 9 great support")
        channel = self.workspace.dm_channel(contact_id)
        self.say(
            self.style.frame(
                f"── {contact.name} ({contact.external_id}) in their DM with clmbot · {self.when()}"
            )
        )
        self.say(f"  {printable(text)}")
        self._events += 1
        event_id = f"EvDEMO{self._events:06d}"
        event = {
            "type": "message",
            "channel_type": "im",
            "channel": channel,
            "user": contact_id,
            "text": as_slack_sends(text),
            "ts": f"{self.now.timestamp():.6f}",
        }
        reply = self.bot.dm_reply(event, event_id)
        if reply is not None:
            self.bot.send_dm_reply(
                self.workspace,  # type: ignore[arg-type]
                reply,
                user_id=contact_id,
                channel_id=channel,
                event_id=event_id,
            )
        self.flush()

    def _contact(self, ref: str) -> str:
        wanted = ref.strip().lower()
        for slack_id, c in self.workspace.contacts.items():
            if wanted in (c.external_id.lower(), slack_id.lower()):
                return slack_id
        known = next((c for c in self.business.customers if c.external_id.lower() == wanted), None)
        example = self.example_contact().external_id
        if known is not None:
            raise DemoError(
                f"{known.external_id} ({known.name}) has no Slack account in the sample, so "
                f"cannot write to the bot; try a customer who has one, e.g. {example}"
            )
        raise DemoError(f"no customer `{ref}` in the sample: give an external id, e.g. {example}")

    def click(self, text: str) -> None:
        """`N`: button N of the last message the one typing sees (their answers, the team's
        channels); `CUSTOMER N`: as that customer, in their DM (a survey's score)."""
        who, _, number = text.strip().rpartition(" ")
        if not number.isdigit():
            raise DemoError("say which button: :click 1, or :click C0001 10 for a customer's")
        if who:
            viewer = self._contact(who)
            target = self.targets.get(viewer)
            if target is None:
                raise DemoError(f"{who} has no message with buttons in their DM yet")
        else:
            mine = self.targets.get(self.me.slack_id)
            team = self.targets.get("#team")  # anyone may press; the bot decides
            shown = [t for t in (mine, team) if t is not None]
            if not shown:
                raise DemoError("no message with buttons yet: ask for one, e.g. /clm at-risk")
            target = max(shown, key=lambda t: t.seq)
        if not target.buttons:
            raise DemoError("that message has no buttons left")
        if not 1 <= int(number) <= len(target.buttons):
            raise DemoError(
                f"that message has buttons 1 to {len(target.buttons)}: :click one of them"
            )
        button = target.buttons[int(number) - 1]
        kind = button.action_id.split(":", 1)[0]
        self.say(self.style.dim(f"(pressed [{button.number}] {button.label})"))
        if kind == RUN_WORDS:
            self._answer(button_words(button.value))
        elif kind == OPEN_PROFILE:
            self._answer(["customer", button.value])
        elif kind == ALERT_ACTION:
            verb = button.action_id.split(":", 1)[1]
            refusal = self.bot.alert_click(
                self.workspace,  # type: ignore[arg-type]
                self.me.slack_id,
                verb,
                button.value,
            )
            if refusal is not None:
                self._show_answer(refusal)
            self.flush()
        elif kind == SURVEY_SCORE and target.channel and target.ts:
            # A survey question is in a customer's DM: only they can press its buttons.
            customer = self._viewer(target.channel)
            outcome = self.bot.survey_click(customer, button.value)
            if outcome is not None:
                question, answered = outcome
                self.workspace.chat_update(
                    channel=target.channel, ts=target.ts, **question.as_kwargs()
                )
                self.flush()
                if answered:
                    self._send_now()
        else:
            raise DemoError("the demo cannot press that button")

    def home(self) -> None:
        """The Home tab, as `app_home_opened` publishes it for whoever is typing."""
        blocks = self.bot.home(self.me.slack_id)
        self.workspace.views_publish(
            user_id=self.me.slack_id, view={"type": "home", "blocks": blocks}
        )
        self.flush()

    # --- the clock ---------------------------------------------------------------------------

    def advance(self, text: str) -> None:
        """Move the clock by `text` (1d, 12h, 30m), running on the way what the bot's
        scheduler runs: the survey sender, and the morning pass at 09:00 in the team's zone."""
        span = parse_span(text)
        start, end = self.now, self.now + span
        self.say(self.style.frame(f"⏩ {self.when(start)} → {self.when(end)}"))
        totals = SendReport()
        for at, morning in _steps(start, end, self.settings.alert_time):
            self.now = at
            if morning is not None:
                line = self._daily(morning, post=True)
                self.flush()
                self.say(self.style.dim(line))
            report = self.sender.run_once(at)
            for key, value in vars(report).items():
                if isinstance(value, int):
                    setattr(totals, key, getattr(totals, key) + value)
            self.flush()
        self.now = end
        sent = {k: v for k, v in vars(totals).items() if isinstance(v, int) and v}
        done = ", ".join(f"{k} {v}" for k, v in sent.items()) or "nothing to send"
        self.say(self.style.dim(f"It is {self.when()}. Survey sender: {done}."))

    def _daily(self, day: date, *, post: bool) -> str:
        report = run_day(
            self.engine,
            self.workspace if post else None,  # type: ignore[arg-type]
            self.settings,
            day=day,
            as_of=self.now,
            now=self.now,
            by="demo",
            post=post,
        )
        if not report.ran:
            return f"The morning pass of {day:%a %d %b} had run already."
        posted = ", ".join(
            f"{n:,} raised in the digest of route {route}" for route, n in report.posted.items()
        )
        return (
            f"The morning pass of {day:%a %d %b}: {report.scored:,} scored, "
            f"{report.at_risk:,} at risk" + (f"; {posted}" if posted else "") + "."
        )

    def _send_now(self) -> None:
        """The scheduler's wake-up after a survey was queued or answered."""
        self.sender.run_once(self.now)
        self.flush()


_TEAM_ID = re.compile(r"<?@?\b(U0[A-Z0-9]{7})\b>?")


def _named(line: str) -> str:
    """The team's Slack ids in plain text as the names Slack would show (a mention,
    `<@U…>`, as @name)."""

    def name(match: re.Match[str]) -> str:
        person = BY_ID.get(match.group(1))
        if person is None:
            return match.group(0)
        return f"@{person.name}" if "@" in match.group(0) else person.name

    return _TEAM_ID.sub(name, line)


def _steps(start: datetime, end: datetime, at: time) -> list[tuple[datetime, date | None]]:
    """The sender's runs in (start, end], and the mornings (their day) that fall between."""
    times: dict[datetime, date | None] = {}
    every = int(SENDER_EVERY.total_seconds())
    step = datetime.fromtimestamp((int(start.timestamp()) // every + 1) * every, UTC)
    while step < end:
        times[step] = None
        step += SENDER_EVERY
    times[end] = None
    day = start.astimezone(ZONE).date()
    while True:
        morning = datetime.combine(day, at, tzinfo=ZONE).astimezone(UTC)
        if morning > end:
            break
        if morning > start:
            times[morning] = day
        day += timedelta(days=1)
    return sorted(times.items())
