from datetime import time
from pathlib import Path

import pytest

from clmbot.config import DEFAULT_STAGES, ConfigError, load_settings
from clmbot.risk.settings import RiskConfig
from clmbot.surveys.settings import SurveyConfig


def settings_from(env: dict[str, str], cwd: Path):
    return load_settings(env, cwd=cwd)


def test_defaults_follow_product_md(tmp_path):
    s = settings_from({}, tmp_path)
    assert s.database_url == "sqlite:///clmbot.db"
    assert s.alert_time == time(9, 0)
    assert str(s.timezone) == "UTC"
    assert s.port == 3000
    assert s.lifecycle.stages == DEFAULT_STAGES
    assert s.lifecycle.terminal == ("churned",)
    assert s.lifecycle.funnel_stages == DEFAULT_STAGES[:-1]
    assert s.team == () and s.admins == ()
    assert any("CLMBOT_ALERT_CHANNEL" in w for w in s.warnings)


def test_every_variable_is_read(tmp_path):
    s = settings_from(
        {
            "SLACK_BOT_TOKEN": "xoxb-1",
            "SLACK_APP_TOKEN": "xapp-1",
            "SLACK_SIGNING_SECRET": "sec",
            "SLACK_API_URL": "http://127.0.0.1:9/api",
            "DATABASE_URL": "sqlite:///x.db",
            "CLMBOT_TIMEZONE": "Asia/Jakarta",
            "CLMBOT_ALERT_CHANNEL": "C0123ABCD",
            "CLMBOT_ALERT_TIME": "07:30",
            "CLMBOT_TEAM": "U01AAA, S02BBB",
            "CLMBOT_ADMINS": "U01AAA",
            "PORT": "8080",
        },
        tmp_path,
    )
    assert s.slack_api_url == "http://127.0.0.1:9/api/"
    assert str(s.timezone) == "Asia/Jakarta"
    assert s.alert_time == time(7, 30)
    assert s.team == ("U01AAA", "S02BBB")
    assert s.admins == ("U01AAA",)
    assert s.port == 8080
    assert s.warnings == []


def test_dotenv_is_read_and_real_environment_wins(tmp_path):
    (tmp_path / ".env").write_text("CLMBOT_ALERT_TIME=06:15\nPORT=4000\n")
    s = settings_from({"PORT": "5000"}, tmp_path)
    assert s.alert_time == time(6, 15)
    assert s.port == 5000


def test_env_example_lists_every_variable():
    example = (Path(__file__).parents[1] / ".env.example").read_text()
    for name in (
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_API_URL",
        "DATABASE_URL",
        "CLMBOT_CONFIG",
        "CLMBOT_TIMEZONE",
        "CLMBOT_ALERT_CHANNEL",
        "CLMBOT_ALERT_TIME",
        "CLMBOT_TEAM",
        "CLMBOT_ADMINS",
        "PORT",
        "CLMBOT_AUTO_MIGRATE",
    ):
        line = next(
            (ln for ln in example.splitlines() if ln.lstrip("# ").startswith(name + "=")), None
        )
        assert line is not None, f"{name} missing from .env.example"
    # every variable has a comment line right above it
    lines = example.splitlines()
    for i, ln in enumerate(lines):
        if "=" in ln and not ln.startswith("#"):
            assert lines[i - 1].startswith("#"), f"no comment above {ln}"


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"CLMBOT_ALERT_TIME": "25:00"}, "CLMBOT_ALERT_TIME=25:00"),
        ({"CLMBOT_ALERT_TIME": "9am"}, "CLMBOT_ALERT_TIME=9am"),
        ({"CLMBOT_TIMEZONE": "Mars/Olympus"}, "CLMBOT_TIMEZONE=Mars/Olympus"),
        ({"PORT": "http"}, "PORT=http"),
        ({"PORT": "70000"}, "PORT=70000"),
        ({"CLMBOT_ALERT_CHANNEL": "#cs-alerts"}, "CLMBOT_ALERT_CHANNEL=#cs-alerts"),
        ({"CLMBOT_ADMINS": "alice"}, "CLMBOT_ADMINS: alice"),
        ({"SLACK_API_URL": "localhost:9"}, "SLACK_API_URL=localhost:9"),
        ({"CLMBOT_CONFIG": "nowhere.toml"}, "CLMBOT_CONFIG=nowhere.toml"),
    ],
)
def test_a_bad_value_stops_with_one_line_naming_it(tmp_path, env, names):
    with pytest.raises(ConfigError) as err:
        settings_from(env, tmp_path)
    message = str(err.value)
    assert names in message
    assert "\n" not in message


def test_clmbot_toml_sets_the_stages(tmp_path):
    (tmp_path / "clmbot.toml").write_text(
        '[lifecycle]\nstages = ["trial", "paying", "lost"]\nterminal = ["lost"]\n'
    )
    s = settings_from({}, tmp_path)
    assert s.lifecycle.stages == ("trial", "paying", "lost")
    assert s.lifecycle.funnel_stages == ("trial", "paying")
    assert s.config_path == tmp_path / "clmbot.toml"


def test_the_shipped_clmbot_toml_is_valid_and_has_the_defaults():
    repo = Path(__file__).parents[1]
    s = load_settings({"CLMBOT_CONFIG": str(repo / "clmbot.toml")}, cwd=repo, dotenv=False)
    assert s.lifecycle.stages == DEFAULT_STAGES
    defaults = SurveyConfig()
    shipped = s.surveys
    assert (shipped.window, shipped.cooldown, shipped.expire_after, shipped.confirm_over) == (
        defaults.window,
        defaults.cooldown,
        defaults.expire_after,
        defaults.confirm_over,
    )
    assert s.risk == RiskConfig()


def test_the_feedback_channel_is_a_channel_id(tmp_path):
    s = load_settings({"CLMBOT_FEEDBACK_CHANNEL": "C0FEEDBACK"}, cwd=tmp_path, dotenv=False)
    assert s.feedback_channel == "C0FEEDBACK"
    with pytest.raises(ConfigError, match="CLMBOT_FEEDBACK_CHANNEL=#feedback is not a channel ID"):
        load_settings({"CLMBOT_FEEDBACK_CHANNEL": "#feedback"}, cwd=tmp_path, dotenv=False)


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[lifecycle\nstages = 1", "not valid TOML"),
        ("[lifecycle]\nstages = 'awareness'", "lifecycle.stages must be a list"),
        ('[lifecycle]\nstages = ["a1", "a1", "b"]', "names 'a1' twice"),
        ('[lifecycle]\nstages = ["a", "b"]\nterminal = ["c"]', "lifecycle.terminal names 'c'"),
        ('[lifecycle]\nstage = ["a", "b"]', "unknown setting lifecycle.stage"),
        ("[alerts]\nx = 1", "unknown setting alerts.x"),
        ("[risk]\nkeep_scores_days = 1", "risk.keep_scores_days must be a whole number of days"),
        ("[risk]\nkeep_scores_days = 2.5", "from 2 to 3650, or 0 to keep every pass's scores"),
        ("[risk]\nkeep_scores_days = true", "risk.keep_scores_days must be"),
        ("[nonesuch]\nx = 1", "unknown section [nonesuch]"),
    ],
)
def test_a_broken_clmbot_toml_stops_with_one_line(tmp_path, toml, expected):
    (tmp_path / "clmbot.toml").write_text(toml)
    with pytest.raises(ConfigError) as err:
        settings_from({}, tmp_path)
    assert expected in str(err.value)
    assert "clmbot.toml" in str(err.value)
    assert "\n" not in str(err.value)


def test_risk_scores_are_kept_35_days_unless_set(tmp_path):
    assert settings_from({}, tmp_path).risk.keep_scores_days == 35
    (tmp_path / "clmbot.toml").write_text("[risk]\nkeep_scores_days = 0\n")
    assert settings_from({}, tmp_path).risk.keep_scores_days == 0
    (tmp_path / "clmbot.toml").write_text("[risk]\nkeep_scores_days = 400\n")
    assert settings_from({}, tmp_path).risk.keep_scores_days == 400


def test_auto_migrate_is_on_by_default_and_can_be_turned_off(tmp_path):
    assert settings_from({}, tmp_path).auto_migrate is True
    assert settings_from({"CLMBOT_AUTO_MIGRATE": "false"}, tmp_path).auto_migrate is False
    with pytest.raises(ConfigError, match="CLMBOT_AUTO_MIGRATE=maybe is not true or false"):
        settings_from({"CLMBOT_AUTO_MIGRATE": "maybe"}, tmp_path)


def test_admins_are_users_not_groups(tmp_path):
    with pytest.raises(ConfigError, match="CLMBOT_ADMINS takes user IDs"):
        settings_from({"CLMBOT_ADMINS": "U0ADMIN, S0ADMINS"}, tmp_path)
