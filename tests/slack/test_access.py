from sqlmodel import select

from clmbot.store.db import session_scope
from clmbot.store.models import AuditEntry, Customer, StageChange
from tests.slack.conftest import ADMIN, MEMBER
from tests.slack.test_commands import text_of


def test_outside_the_team_is_refused(bot_with, slack, customers):
    slack.add_user("U0OUTSIDER")
    bot = bot_with(team=(MEMBER, "S0CSTEAM"))
    seen = text_of(bot.command("customer A1", user="U0OUTSIDER"))
    assert "You are not on the clmbot team" in seen and f"Ask <@{ADMIN}> to add you" in seen
    assert "CLMBOT_TEAM" not in seen  # people are told who can help, not a setting
    assert "ops@acme.io" not in seen
    assert "Acme" in text_of(bot.command("customer A1", user=MEMBER))


def test_a_member_of_a_team_user_group_is_let_in(bot_with, slack, customers):
    slack.add_user("U0GROUPIE")
    slack.groups["S0CSTEAM"] = ["U0GROUPIE"]
    bot = bot_with(team=("S0CSTEAM",))
    assert "Acme Corp" in text_of(bot.command("customer A1", user="U0GROUPIE"))


def test_guests_are_refused(bot, slack, customers):
    slack.add_user("U0GUEST", is_restricted=True)
    slack.add_user("U0SINGLE", is_ultra_restricted=True)
    for guest in ("U0GUEST", "U0SINGLE"):
        answer = bot.command("customer A1", user=guest)
        assert answer["response_type"] == "ephemeral"
        assert "Guest accounts cannot use clmbot" in text_of(answer)


def test_slack_connect_users_are_refused(bot, slack, customers):
    slack.add_user("U0PARTNER", team_id="T0OTHERORG")
    seen = text_of(bot.command("customer A1", user="U0PARTNER"))
    assert "members of its own workspace only" in seen
    # Slack may not even know them here
    seen = text_of(bot.command("customer A1", user="U0UNKNOWN"))
    assert "members of its own workspace only" in seen


def test_only_admins_change_stages(bot, engine, customers):
    seen = text_of(bot.command("stage A1 churned", user=MEMBER))
    assert "only clmbot admins may do" in seen and f"<@{ADMIN}>" in seen
    with session_scope(engine) as s:
        assert s.exec(select(Customer).where(Customer.external_id == "A1")).one().stage == (
            "purchase"
        )
        assert s.exec(select(StageChange).where(StageChange.to_stage == "churned")).all() == []
        assert s.exec(select(AuditEntry)).all() == []


def test_without_admins_nobody_writes(bot_with, customers):
    bot = bot_with(admins=())
    seen = text_of(bot.command("stage A1 churned", user=ADMIN))
    assert "no one may change data yet: clmbot has no admins" in seen
    assert "CLMBOT_ADMINS" not in seen


def test_user_lookups_are_cached_for_a_while(bot, slack, clock, customers):
    bot.command("help")
    bot.command("customer A1")
    assert len(slack.calls_to("users.info")) == 1
    clock.advance(minutes=11)
    bot.command("help")
    assert len(slack.calls_to("users.info")) == 2


def test_the_workspace_is_the_bots_own_not_the_requests(bot, slack, customers):
    """A request from the other side of a shared channel may name its own team: the check
    is against the workspace the bot is installed in (auth.test)."""
    slack.add_user("U0PARTNER", team_id="T0OTHERORG")
    seen = text_of(bot.command("customer A1", user="U0PARTNER", team="T0OTHERORG"))
    assert "members of its own workspace only" in seen
    slack.add_user("U0STRANGER", is_stranger=True)
    assert "members of its own workspace only" in text_of(
        bot.command("customer A1", user="U0STRANGER")
    )


def test_another_workspace_of_the_same_grid_organisation_is_in(bot, slack, customers):
    slack.auth["enterprise_id"] = "E0ORG"
    slack.add_user("U0SIBLING", team_id="T0SISTER", enterprise_user={"enterprise_id": "E0ORG"})
    assert "Acme Corp" in text_of(bot.command("customer A1", user="U0SIBLING"))


def test_a_wrong_user_group_in_the_team_locks_nobody_listed_out(bot_with, slack, customers):
    slack.fail("usergroups.users.list", 200)  # Slack answers: no such group
    slack.add_user("U0OTHER")
    bot = bot_with(team=(MEMBER, "S0TYPO"))
    assert "Acme Corp" in text_of(bot.command("customer A1", user=MEMBER))
    assert "You are not on the clmbot team" in text_of(bot.command("customer A1", user="U0OTHER"))
