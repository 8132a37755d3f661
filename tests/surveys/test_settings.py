"""`[surveys]` in clmbot.toml: read when right, refused in one line when wrong."""

from __future__ import annotations

from datetime import time, timedelta

import pytest

from clmbot.config import ConfigError, load_settings


def settings_from(tmp_path, toml: str):
    (tmp_path / "clmbot.toml").write_text(toml)
    return load_settings({}, cwd=tmp_path, dotenv=False)


def test_defaults_work_without_a_surveys_section(tmp_path):
    surveys = load_settings({}, cwd=tmp_path, dotenv=False).surveys
    assert surveys.window.start == time(9) and surveys.window.end == time(18)
    assert surveys.cooldown == timedelta(days=90) and surveys.confirm_over == 50
    assert surveys.texts.say("id", "opted_out").startswith("Baik")


def test_a_team_sets_its_product_hours_and_texts(tmp_path):
    surveys = settings_from(
        tmp_path,
        '[surveys]\nproduct = "Kopi Kita"\nwindow = "08:30-17:00"\ndays = ["mon", "sat"]\n'
        "cooldown_days = 30\n"
        '[surveys.texts.id]\nchosen = "Nilai Anda {score}. Makasih!"\n',
    ).surveys
    assert surveys.product == "Kopi Kita"
    assert (surveys.window.start, surveys.window.days) == (time(8, 30), frozenset({0, 5}))
    assert surveys.cooldown == timedelta(days=30)
    assert surveys.texts.say("id", "chosen", score=7) == "Nilai Anda 7. Makasih!"
    assert surveys.texts.say("en", "chosen", score=7) == "You chose *7*. Thank you!"


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        ("[surveys]\nwindow = '18:00-09:00'\n", "must end after it starts"),
        ("[surveys]\nwindow = 'nine to five'\n", 'must be "HH:MM-HH:MM"'),
        ("[surveys]\ndays = ['someday']\n", "surveys.days must be a list of days"),
        ("[surveys]\ncooldown_days = -1\n", "surveys.cooldown_days must be a number"),
        ("[surveys]\nreminder_after_days = 9\n", "less than expire_after_days"),
        ("[surveys]\ncolour = 'blue'\n", "unknown setting surveys.colour"),
        ("[surveys.texts.id]\nhello = 'Halo'\n", "surveys.texts.id.hello is not a text"),
        ("[surveys.texts.en]\nchosen = 'You gave {points}'\n", "uses {points}; it may use {score}"),
        ("[surveys.texts.en]\nchosen = 'You gave {score'\n", "unmatched"),
        ("[surveys.texts.en]\nchosen = 'You gave {}'\n", "without a name"),
        ("[surveys.texts.en]\nchosen = 'You gave {score!r}'\n", "without a name"),
        ("[surveys.texts.fr]\nchosen = 'Vous avez choisi {score}'\n", "clmbot speaks en, id"),
        ("[surveys]\nwindow = '09:00-18:60'\n", 'must be "HH:MM-HH:MM"'),
        ("[surveys]\nwindow = '09:00-24:30'\n", 'must be "HH:MM-HH:MM"'),
        ("[surveys]\ndays = ['monkey']\n", "surveys.days must be a list of days"),
    ],
)
def test_a_wrong_setting_is_one_line_naming_it(tmp_path, toml, problem):
    with pytest.raises(ConfigError) as caught:
        settings_from(tmp_path, toml)
    assert problem in str(caught.value) and "\n" not in str(caught.value)


def test_a_window_to_midnight_and_days_in_full(tmp_path):
    surveys = settings_from(
        tmp_path, '[surveys]\nwindow = "20:00-24:00"\ndays = ["Saturday", "sun"]\n'
    ).surveys
    assert surveys.window.describe() == "20:00-24:00, Sat, Sun"
    assert surveys.texts.say("en", "closed")  # braces in no text: always formatted safely


def test_alert_routes_are_read_and_checked(tmp_path):
    settings = settings_from(
        tmp_path,
        '[alerts]\nrise = 20\n[[alerts.routes]]\nname = "pro"\nsegment = "plan:pro"\n'
        'channel = "C0PRO"\n',
    )
    assert settings.alerts.rise == 20
    assert [(r.name, r.segment, r.channel) for r in settings.routes] == [
        ("pro", "plan:pro", "C0PRO")
    ]
    with pytest.raises(ConfigError, match="channel must be a channel ID"):
        settings_from(tmp_path, '[[alerts.routes]]\nname = "x"\nchannel = "#cs-alerts"\n')
