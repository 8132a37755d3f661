"""The one settings object: built once at start from the environment and `clmbot.toml`.

No other module reads `os.environ`; everything that behaves differently per deployment gets
a `Settings` passed down. A bad value stops the start with one line that names the setting,
because a bot that starts half-configured fails later, far from the cause.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from clmbot.alerts.settings import AlertConfig, Route, parse_alerts
from clmbot.risk.settings import RiskConfig, parse_risk
from clmbot.surveys.settings import SurveyConfig, parse_surveys

DEFAULT_STAGES: tuple[str, ...] = (
    "awareness",
    "consideration",
    "purchase",
    "retention",
    "advocacy",
    "churned",
)
DEFAULT_TERMINAL_STAGES: tuple[str, ...] = ("churned",)
DEFAULT_DATABASE_URL = "sqlite:///clmbot.db"
DEFAULT_CONFIG_FILE = "clmbot.toml"

_SLACK_ID = re.compile(r"^[UWS][A-Z0-9]{2,}$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


class ConfigError(ValueError):
    """A setting is wrong; the message is one line naming it and how to fix it."""


@dataclass(frozen=True)
class LifecycleConfig:
    """Stages in funnel order; terminal stages end the funnel (a customer can still be moved
    out of one: history is corrected by another move, never rewritten)."""

    stages: tuple[str, ...] = DEFAULT_STAGES
    terminal: tuple[str, ...] = DEFAULT_TERMINAL_STAGES

    @property
    def funnel_stages(self) -> tuple[str, ...]:
        return tuple(s for s in self.stages if s not in self.terminal)

    @property
    def first_stage(self) -> str:
        return self.stages[0]


@dataclass(frozen=True)
class DisplayConfig:
    """How numbers are shown. `currency` is put before amounts of money: a symbol (`$`, `€`)
    is written against the number, a code (`USD`, `Rp`) with a space."""

    currency: str = ""

    def money(self, amount: float) -> str:
        number = f"{amount:,.2f}".removesuffix(".00")
        if not self.currency:
            return number
        gap = " " if self.currency[-1].isalpha() else ""
        return f"{self.currency}{gap}{number}"


@dataclass(frozen=True)
class Settings:
    slack_bot_token: str | None = None
    slack_app_token: str | None = None
    slack_signing_secret: str | None = None
    slack_api_url: str | None = None
    database_url: str = DEFAULT_DATABASE_URL
    config_path: Path | None = None
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    alert_channel: str | None = None
    alert_time: time = time(9, 0)
    # Where survey answers are posted as they arrive; None: not posted.
    feedback_channel: str | None = None
    team: tuple[str, ...] = ()
    admins: tuple[str, ...] = ()
    port: int = 3000
    # Bring the schema up to date when the bot starts; off, the start refuses a stale schema.
    auto_migrate: bool = True
    lifecycle: LifecycleConfig = field(default_factory=LifecycleConfig)
    display: DisplayConfig = field(default_factory=DisplayConfig)
    surveys: SurveyConfig = field(default_factory=SurveyConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    alerts: AlertConfig = field(default_factory=AlertConfig)

    @property
    def routes(self) -> tuple[Route, ...]:
        """Where digests go: the default route (CLMBOT_ALERT_CHANNEL, every customer), then
        the routes of clmbot.toml."""
        default = (Route("default", self.alert_channel),) if self.alert_channel else ()
        return default + self.alerts.routes

    @property
    def warnings(self) -> list[str]:
        """Things that are allowed but that a team probably did not mean."""
        out = []
        if not self.team:
            out.append(
                "CLMBOT_TEAM is not set: every full member of the workspace can read customer "
                "data with /clm; set it to the people or user groups of the customer team"
            )
        if not self.alert_channel:
            out.append("CLMBOT_ALERT_CHANNEL is not set: no daily churn-drift digest is posted")
        if not self.admins:
            out.append("CLMBOT_ADMINS is not set: every write (stage, survey, forget) is refused")
        return out


def load_settings(
    environ: Mapping[str, str] | None = None, *, cwd: Path | None = None, dotenv: bool = True
) -> Settings:
    """Settings from `environ` (default: the process environment, plus `.env` in `cwd`).

    Real environment variables win over `.env`, as python-dotenv does by default, so a
    deployment can override a checked-in file.
    """
    cwd = cwd or Path.cwd()
    env: dict[str, str] = {}
    if dotenv and (cwd / ".env").is_file():
        env.update({k: v for k, v in dotenv_values(cwd / ".env").items() if v is not None})
    env.update(os.environ if environ is None else environ)

    def get(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    config_path = _config_path(get("CLMBOT_CONFIG"), cwd)
    lifecycle, display, surveys, risk, alerts = (
        _read_toml(config_path)
        if config_path
        else (LifecycleConfig(), DisplayConfig(), SurveyConfig(), RiskConfig(), AlertConfig())
    )

    return Settings(
        slack_bot_token=get("SLACK_BOT_TOKEN"),
        slack_app_token=get("SLACK_APP_TOKEN"),
        slack_signing_secret=get("SLACK_SIGNING_SECRET"),
        slack_api_url=_url(get("SLACK_API_URL")),
        database_url=get("DATABASE_URL") or DEFAULT_DATABASE_URL,
        config_path=config_path,
        timezone=_zone(get("CLMBOT_TIMEZONE") or "UTC"),
        alert_channel=_channel("CLMBOT_ALERT_CHANNEL", get("CLMBOT_ALERT_CHANNEL")),
        feedback_channel=_channel("CLMBOT_FEEDBACK_CHANNEL", get("CLMBOT_FEEDBACK_CHANNEL")),
        alert_time=_hhmm(get("CLMBOT_ALERT_TIME") or "09:00"),
        team=_ids("CLMBOT_TEAM", get("CLMBOT_TEAM")),
        admins=_ids("CLMBOT_ADMINS", get("CLMBOT_ADMINS"), groups=False),
        port=_port(get("PORT") or "3000"),
        auto_migrate=_flag("CLMBOT_AUTO_MIGRATE", get("CLMBOT_AUTO_MIGRATE") or "true"),
        lifecycle=lifecycle,
        display=display,
        surveys=surveys,
        risk=risk,
        alerts=alerts,
    )


def _config_path(value: str | None, cwd: Path) -> Path | None:
    if value:
        path = Path(value).expanduser()
        path = path if path.is_absolute() else cwd / path
        if not path.is_file():
            raise ConfigError(f"CLMBOT_CONFIG={value}: no such file; fix the path or unset it")
        return path
    default = cwd / DEFAULT_CONFIG_FILE
    return default if default.is_file() else None


def _zone(value: str) -> ZoneInfo:
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"CLMBOT_TIMEZONE={value} is not a known time zone; use an IANA name such as "
            "Europe/Berlin or Asia/Jakarta"
        ) from None


def _hhmm(value: str) -> time:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", value)
    if match and int(match[1]) < 24 and int(match[2]) < 60:
        return time(int(match[1]), int(match[2]))
    raise ConfigError(f"CLMBOT_ALERT_TIME={value} is not a time of day; use HH:MM, e.g. 09:00")


def _port(value: str) -> int:
    if value.isascii() and value.isdigit() and 0 < int(value) < 65536:
        return int(value)
    raise ConfigError(f"PORT={value} is not a port number; use a number from 1 to 65535")


def _flag(name: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={value} is not true or false; use true or false")


def _url(value: str | None) -> str | None:
    if value is None:
        return None
    if not re.match(r"^https?://[^/\s]+", value):
        raise ConfigError(
            f"SLACK_API_URL={value} is not an http(s) URL; use e.g. http://127.0.0.1:8080/api/"
        )
    return value if value.endswith("/") else value + "/"


def _channel(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not _CHANNEL_ID.match(value):
        raise ConfigError(
            f"{name}={value} is not a channel ID; use the ID (e.g. C0123ABCD) "
            "from the channel's details, not its #name"
        )
    return value


def _ids(name: str, value: str | None, *, groups: bool = True) -> tuple[str, ...]:
    if value is None:
        return ()
    ids = tuple(part for part in re.split(r"[\s,]+", value) if part)
    if not groups and any(i.startswith("S") for i in ids):
        raise ConfigError(
            f"{name} takes user IDs (U0123ABCD), not user groups: "
            f"{', '.join(i for i in ids if i.startswith('S'))}"
        )
    bad = [i for i in ids if not _SLACK_ID.match(i)]
    if bad:
        raise ConfigError(
            f"{name}: {', '.join(bad)} is not a Slack user or user-group ID; use IDs such as "
            "U0123ABCD or S0123ABCD, separated by commas"
        )
    return ids


_KNOWN_TOML: dict[str, set[str]] = {
    "lifecycle": {"stages", "terminal"},
    "display": {"currency"},
    "surveys": set(),  # checked by clmbot.surveys.settings
    "risk": set(),  # checked by clmbot.risk.settings
    "alerts": set(),  # checked by clmbot.alerts.settings
}


def _read_toml(
    path: Path,
) -> tuple[LifecycleConfig, DisplayConfig, SurveyConfig, RiskConfig, AlertConfig]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid TOML ({exc}); fix the file or unset CLMBOT_CONFIG"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from None
    for section, body in data.items():
        if section not in _KNOWN_TOML:
            raise ConfigError(
                f"{path}: unknown section [{section}]; known: "
                + ", ".join(f"[{s}]" for s in _KNOWN_TOML)
            )
        if not isinstance(body, dict):
            raise ConfigError(f"{path}: {section} must be a [{section}] table")
        unknown = set(body) - _KNOWN_TOML[section]
        if unknown and section not in ("surveys", "risk", "alerts"):
            raise ConfigError(
                f"{path}: unknown setting {section}.{sorted(unknown)[0]}; known in "
                f"[{section}]: {', '.join(sorted(_KNOWN_TOML[section]))}"
            )
    surveys, problem = parse_surveys(data.get("surveys", {}))
    if problem:
        raise ConfigError(f"{path}: {problem}")
    risk, problem = parse_risk(data.get("risk", {}))
    if problem:
        raise ConfigError(f"{path}: {problem}")
    alerts, problem = parse_alerts(data.get("alerts", {}))
    if problem:
        raise ConfigError(f"{path}: {problem}")
    return (
        _lifecycle(path, data.get("lifecycle", {})),
        _display(path, data.get("display", {})),
        surveys,
        risk,
        alerts,
    )


def _display(path: Path, body: dict[str, Any]) -> DisplayConfig:
    currency = body.get("currency", "")
    if not isinstance(currency, str) or len(currency) > 8 or any(c.isspace() for c in currency):
        raise ConfigError(
            f'{path}: display.currency must be a short symbol or code, e.g. "$", "€" or "IDR"'
        )
    return DisplayConfig(currency=currency)


def _lifecycle(path: Path, body: dict[str, Any]) -> LifecycleConfig:
    stages = body.get("stages", list(DEFAULT_STAGES))
    if (
        not isinstance(stages, list)
        or len(stages) < 2
        or not all(isinstance(s, str) and _STAGE_NAME.match(s) for s in stages)
    ):
        raise ConfigError(
            f"{path}: lifecycle.stages must be a list of at least two lower-case names "
            '(letters, digits, - or _), e.g. ["awareness", "purchase", "churned"]'
        )
    if len(set(stages)) != len(stages):
        dup = next(s for s in stages if stages.count(s) > 1)
        raise ConfigError(f"{path}: lifecycle.stages names {dup!r} twice; name each stage once")
    default_terminal = [s for s in DEFAULT_TERMINAL_STAGES if s in stages]
    terminal = body.get("terminal", default_terminal)
    if not isinstance(terminal, list) or not all(isinstance(s, str) for s in terminal):
        raise ConfigError(
            f'{path}: lifecycle.terminal must be a list of stage names, e.g. ["churned"]'
        )
    stray = [s for s in terminal if s not in stages]
    if stray:
        raise ConfigError(
            f"{path}: lifecycle.terminal names {stray[0]!r}, which is not in lifecycle.stages"
        )
    if len(terminal) >= len(stages):
        raise ConfigError(f"{path}: lifecycle.terminal leaves no stage for the funnel")
    return LifecycleConfig(stages=tuple(stages), terminal=tuple(terminal))
