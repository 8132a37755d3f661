"""manifest.yml creates a working app in one paste: what the code listens to is declared,
and no scope more than the features need."""

from pathlib import Path

import yaml

from clmbot.commands.registry import COMMANDS

MANIFEST = yaml.safe_load((Path(__file__).parents[1] / "manifest.yml").read_text())


def test_the_slash_command_has_a_usage_hint_naming_every_subcommand():
    (command,) = MANIFEST["features"]["slash_commands"]
    assert command["command"] == "/clm"
    for name in COMMANDS:
        assert name in command["usage_hint"]
    assert len(command["usage_hint"]) <= 1000 and len(command["description"]) <= 100


def test_only_the_scopes_the_features_need():
    assert sorted(MANIFEST["oauth_config"]["scopes"]["bot"]) == sorted(
        [
            "commands",
            "chat:write",
            "im:write",
            "im:history",
            "channels:history",
            "groups:history",
            "users:read",
            "users:read.email",
            "files:write",
            "usergroups:read",
        ]
    )


def test_events_interactivity_home_and_socket_mode():
    settings = MANIFEST["settings"]
    assert sorted(settings["event_subscriptions"]["bot_events"]) == [
        "app_home_opened",
        "message.im",
    ]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["socket_mode_enabled"] is True
    home = MANIFEST["features"]["app_home"]
    assert home["home_tab_enabled"] and home["messages_tab_enabled"]
    assert home["messages_tab_read_only_enabled"] is False
    assert MANIFEST["features"]["bot_user"]["display_name"] == "clmbot"
