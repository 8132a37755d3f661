"""The App Home tab through the real Bolt app and the Slack stand-in: opening it publishes a
dashboard built for whoever opened it (their own customers at risk, never a colleague's;
the team's NPS and CSAT, funnel and surveys as the data says), within Block Kit's caps;
guests, other workspaces and customers get a refusal; the Messages tab publishes nothing."""

from __future__ import annotations

import itertools
import re
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select, update

from clmbot.config import Settings
from clmbot.dashboard import RISK_SHOWN
from clmbot.lifecycle import funnel
from clmbot.risk import runs
from clmbot.slack.bot import FOR_THE_TEAM
from clmbot.store.db import session_scope
from clmbot.store.models import (
    ANSWERED,
    EXPIRED,
    QUEUED,
    SENT,
    Customer,
    RiskRun,
    RiskScore,
    Survey,
    SurveyRun,
)
from tests.conftest import NOW
from tests.risk.test_backtest import TODAY, shop  # noqa: F401  (the fixture)
from tests.slack.conftest import ADMIN, MEMBER, OWNER
from tests.slack.test_commands import text_of

_events = itertools.count(1)


def open_home(bot: Any, slack: Any, user: str, *, tab: str = "home") -> dict[str, Any]:
    """Open the tab as `user`, signed as Slack sends it; the view published for them."""
    before = len(slack.calls_to("views.publish"))
    event = {"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": tab}
    assert bot.event(event, event_id=f"EvHome{next(_events)}").status == 200
    publish = slack.wait_for("views.publish", count=before + 1)[before]
    assert publish.body["user_id"] == user
    view = publish.body["view"]
    assert view["type"] == "home"
    return view


def fits_the_home_tab(view: dict[str, Any]) -> None:
    """Block Kit's caps for a Home tab."""
    blocks = view["blocks"]
    assert 1 <= len(blocks) <= 100
    for block in blocks:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        if block["type"] == "section":
            assert "text" in block or "fields" in block
            if "text" in block:
                assert len(block["text"]["text"]) <= 3000
            assert len(block.get("fields", [])) <= 10
            assert all(len(f["text"]) <= 2000 for f in block.get("fields", []))
        if block["type"] == "context":
            assert 1 <= len(block["elements"]) <= 10


def part(view: dict[str, Any], title: str) -> str:
    """The text of one part of the tab: from its header to the next divider."""
    text, inside = [], False
    for block in view["blocks"]:
        if block["type"] == "header":
            inside = block["text"]["text"] == title
        elif block["type"] == "divider":
            inside = False
        elif inside:
            text.append(text_of({"blocks": [block]}))
    assert text, f"no part {title!r}"
    return "\n".join(text)


# --- my customers at risk ---------------------------------------------------------------------


@pytest.fixture
def owned_shop(engine: Engine, shop: None, clock: Any) -> None:  # noqa: F811
    """The shop's customers shared between MEMBER and OWNER, with an MRR each, and two
    mornings' risk passes; the clock on the second morning."""
    with engine.begin() as conn:
        conn.execute(update(Customer).values(mrr=Customer.id * 10))
    with engine.begin() as conn:  # by the parity of their id
        ids = list(conn.execute(select(Customer.id)).scalars())
        for owner in (MEMBER, OWNER):
            mine = [i for i in ids if (i % 2 == 0) == (owner == MEMBER)]
            conn.execute(update(Customer).where(Customer.id.in_(mine)).values(owner_slack_id=owner))
    settings = Settings(database_url=str(engine.url))
    for back in (1, 0):
        at = TODAY - timedelta(days=back)
        runs.run(engine, at.date(), as_of=at, now=at, settings=settings, by="test")
    clock.now = TODAY


def expected_at_risk(engine: Engine, owner: str) -> list[tuple[str, int]]:
    """(external id, risk) of `owner`'s customers at risk in the latest pass, highest first."""
    with engine.connect() as conn:
        latest = conn.execute(select(func.max(RiskRun.id))).scalar()
        return [
            (r.external_id, r.risk)
            for r in conn.execute(
                select(Customer.external_id, RiskScore.risk)
                .join(RiskScore, RiskScore.customer_id == Customer.id)
                .where(
                    RiskScore.run_id == latest,
                    RiskScore.risk >= Settings().risk.threshold,
                    Customer.owner_slack_id == owner,
                )
                .order_by(RiskScore.risk.desc(), Customer.mrr.desc(), Customer.external_id)
            )
        ]


def test_the_viewer_sees_their_own_customers_at_risk_and_not_a_colleagues(
    bot: Any, slack: Any, engine: Engine, owned_shop: None
) -> None:
    slack.add_user(OWNER)
    mine, theirs = expected_at_risk(engine, MEMBER), expected_at_risk(engine, OWNER)
    assert len(mine) > RISK_SHOWN and theirs  # the shop has plenty of both

    view = open_home(bot, slack, MEMBER)
    fits_the_home_tab(view)
    risk = part(view, "Your customers at risk")
    shown = re.findall(r"`(K\d{3})` · risk \*(\d+)\*", risk)
    assert [(k, int(r)) for k, r in shown] == mine[:RISK_SHOWN]
    assert not {k for k, _ in theirs} & set(re.findall(r"K\d{3}", risk))
    assert f"*{len(mine):,} of your 200 customers* are at risk (70 or more)" in risk
    assert f"{len(mine) - RISK_SHOWN:,} more at risk" in risk and "/clm at-risk owner:@me" in risk
    # The change since the pass before: a number, or new (or nothing when the same).
    day = TODAY - timedelta(days=1)
    since = rf"since {day:%a} {day.day} {day:%b}"
    lines = [line for line in risk.splitlines() if "` · risk *" in line]
    assert len(lines) == RISK_SHOWN
    assert all(re.search(rf"risk \*\d+\*( \(([+-]\d+|new) {since}\))? · MRR", ln) for ln in lines)
    with engine.connect() as conn:
        mrr = conn.execute(
            select(func.sum(Customer.mrr)).where(Customer.external_id.in_([k for k, _ in mine]))
        ).scalar()
    assert f"holding MRR *{mrr:,.0f}*" in risk

    other = part(open_home(bot, slack, OWNER), "Your customers at risk")
    assert [k for k, _ in re.findall(r"`(K\d{3})` · risk \*(\d+)\*", other)] == [
        k for k, _ in theirs[:RISK_SHOWN]
    ]


def test_before_the_first_morning_the_tab_says_so(bot: Any, slack: Any, customers: None) -> None:
    view = open_home(bot, slack, MEMBER)
    risk = part(view, "Your customers at risk")
    assert "No risk pass has been stored yet" in risk and "each morning" in risk


def test_a_viewer_who_owns_nobody_is_told_how_owning_works(
    bot: Any, slack: Any, owned_shop: None
) -> None:
    risk = part(open_home(bot, slack, ADMIN), "Your customers at risk")
    assert "You own no customers" in risk and "owner_slack_id" in risk


# --- NPS, CSAT, the funnel and the surveys ------------------------------------------------------


def test_the_team_numbers_match_the_data(
    bot: Any, slack: Any, engine: Engine, customers: None, bot_settings: Settings
) -> None:
    """The `customers` fixture: A1's NPS 9 (10 Nov) and 6 (1 Jun), CSAT 4 (12 Nov); four
    customers in four stages. Now is 24 Nov."""
    with session_scope(engine) as s:
        ids = dict(s.execute(select(Customer.external_id, Customer.id)).all())
        run_ids = []
        for kind, target, days in [("nps", "plan:pro", 20), ("csat", "stage:retention", 3)]:
            run = SurveyRun(
                kind=kind,
                target=target,
                created_by=ADMIN,
                created_at=NOW - timedelta(days=days),
                queued=2,
                skipped={},
            )
            s.add(run)
            s.flush()
            run_ids.append(run.id)
        surveys = [
            (run_ids[0], "A1", ANSWERED),
            (run_ids[0], "B1", EXPIRED),
            (run_ids[1], "A2", SENT),
            (run_ids[1], "X1", QUEUED),
        ]
        s.execute(
            insert(Survey),
            [
                {
                    "run_id": run_id,
                    "customer_id": ids[ext],
                    "kind": "nps",
                    "status": status,
                    "queued_at": NOW,
                    "not_before": NOW,
                }
                for run_id, ext, status in surveys
            ],
        )

    view = open_home(bot, slack, MEMBER)
    fits_the_home_tab(view)

    scores = part(view, "NPS and CSAT, the whole team")
    # Last 90 days: A1's 9 (a promoter): +100; the 90 days before: their 6: -100.
    assert "*NPS*\n*+100*" in scores and "+200 points vs the 90 days before (-100)" in scores
    assert "*CSAT*\n*100%*" in scores and "no answers the 90 days before" in scores
    assert "1 customer answered" in scores
    assert re.search(r"`Jun` `[█░]+` \*-100\* \(1\)", scores)  # the 6 of 1 June
    assert re.search(r"`Nov` `[█░]+` \*\+100\* \(1\)", scores)
    assert re.search(r"`Aug` `░+` no answers", scores)

    counts = part(view, "Funnel")
    with session_scope(engine) as s:
        want = funnel(s, since=NOW - timedelta(days=90), now=NOW, lifecycle=bot_settings.lifecycle)
    for stage in want.stages:
        share = round(100 * stage.customers / want.total)
        assert f"*{stage.stage}*\n{stage.customers:,}  ({share}%)" in counts
    for c in want.conversions:
        assert f"{c.from_stage} → {c.to_stage} ({c.converted:,} of {c.base:,})" in counts
    assert "4 customers now" in counts

    flight = part(view, "Surveys in flight")
    assert "*1* queued to go out" in flight and "*1* delivered and waiting" in flight
    assert "#2 CSAT" in flight and "#1 NPS" in flight
    assert flight.index("#2 CSAT") < flight.index("#1 NPS")  # newest first
    assert "*50%* response rate · 1 answered · 0 waiting · 1 expired" in flight  # run 1
    assert "/clm at-risk owner:@me" in text_of({"blocks": view["blocks"][-2:]})
    assert "Updated 12:00 UTC on Tue 24 Nov; reopen the tab to refresh" in text_of(
        {"blocks": view["blocks"][-1:]}
    )


def test_customer_text_is_escaped(bot: Any, slack: Any, engine: Engine, customers: None) -> None:
    """X1 is called `<!channel> Evil & Co`: on the tab, as text, never a ping."""
    with engine.begin() as conn:
        x1 = conn.execute(select(Customer.id).where(Customer.external_id == "X1")).scalar()
        conn.execute(update(Customer).where(Customer.id == x1).values(owner_slack_id=MEMBER))
        run = conn.execute(
            insert(RiskRun)
            .values(day=NOW.date(), as_of=NOW, by="t", started_at=NOW, finished_at=NOW)
            .returning(RiskRun.id)
        ).scalar()
        conn.execute(
            insert(RiskScore).values(
                run_id=run, customer_id=x1, risk=99, reasons=["<@U0BOSS> said so & more"]
            )
        )
    view = open_home(bot, slack, MEMBER)
    risk = part(view, "Your customers at risk")
    assert "*&lt;!channel&gt; Evil &amp; Co* `X1` · risk *99*" in risk
    assert "• &lt;@U0BOSS&gt; said so &amp; more" in risk
    assert "<!channel>" not in str(view) and "<@U0BOSS>" not in str(view)


def test_many_customers_and_runs_still_fit(
    bot: Any, slack: Any, engine: Engine, owned_shop: None
) -> None:
    with session_scope(engine) as s:
        customers = list(s.execute(select(Customer.id)).scalars())
        for k in range(40):
            run = SurveyRun(
                kind="nps",
                target="x" * 900 + f" {k}",
                created_by=ADMIN,
                created_at=TODAY - timedelta(hours=k),
                queued=10,
                skipped={},
            )
            s.add(run)
            s.flush()
            s.execute(
                insert(Survey),
                [
                    {
                        "run_id": run.id,
                        "customer_id": cid,
                        "kind": "nps",
                        "status": ANSWERED,
                        "queued_at": TODAY,
                        "not_before": TODAY,
                    }
                    for cid in customers[k * 10 : k * 10 + 10]
                ],
            )
        s.execute(update(Customer).values(name="A very long name " * 17))
    view = open_home(bot, slack, MEMBER)
    fits_the_home_tab(view)
    assert len(view["blocks"]) <= 40  # well within 100, whatever the data
    assert "36 older runs not shown" in part(view, "Surveys in flight")


# --- who may see it ------------------------------------------------------------------------------


def test_a_guest_gets_a_refusal_and_nothing_else(bot: Any, slack: Any, owned_shop: None) -> None:
    slack.add_user("U0GUEST", is_restricted=True)
    view = open_home(bot, slack, "U0GUEST")
    assert len(view["blocks"]) == 1 and view["blocks"][0]["type"] == "section"
    assert "Guest accounts cannot use clmbot" in text_of(view)


def test_someone_from_another_workspace_gets_a_refusal(bot: Any, slack: Any) -> None:
    slack.add_user("U0STRANGER", team_id="T0THEIRS")
    view = open_home(bot, slack, "U0STRANGER")
    assert len(view["blocks"]) == 1
    assert "members of its own workspace only" in text_of(view)


def test_a_customer_in_the_workspace_gets_the_team_refusal(
    bot_with: Any, slack: Any, engine: Engine, customers: None
) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(Customer).where(Customer.external_id == "A1").values(slack_user_id="U0CUST")
        )
    slack.add_user("U0CUST")  # a full member of the workspace, and a customer
    view = open_home(bot_with(), slack, "U0CUST")
    assert len(view["blocks"]) == 1 and FOR_THE_TEAM in text_of(view)
    assert "Acme" not in str(view)
    # Named in CLMBOT_TEAM, the same person is the team.
    named = open_home(bot_with(team=("U0CUST", MEMBER)), slack, "U0CUST")
    assert part(named, "Funnel")


def test_the_messages_tab_publishes_nothing(bot: Any, slack: Any, customers: None) -> None:
    event = {"type": "app_home_opened", "user": MEMBER, "channel": "D0HOME", "tab": "messages"}
    assert bot.event(event, event_id="EvMessagesTab").status == 200
    open_home(bot, slack, ADMIN)  # then someone opens Home: theirs is the only view
    time.sleep(0.3)  # give a wrong publish the time to show up
    assert [c.body["user_id"] for c in slack.calls_to("views.publish")] == [ADMIN]


def test_a_failure_shows_an_apology_with_an_error_id(
    bot: Any, slack: Any, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from clmbot.store.db import make_engine

    working = bot.bot.engine
    bot.bot.engine = make_engine(f"sqlite:///{tmp_path}/gone/clmbot.db")  # does not answer
    try:
        view = open_home(bot, slack, MEMBER)
    finally:
        bot.bot.engine = working
    said = text_of(view)
    error_id = re.search(r"error id `([0-9a-f]{10})`", said)
    assert error_id and "could not be built" in said
    assert error_id[1] in caplog.text


def test_a_view_slack_refuses_is_replaced_by_an_apology(
    bot: Any, slack: Any, customers: None, caplog: pytest.LogCaptureFixture
) -> None:
    slack.refuse_next("views.publish", "invalid_blocks")
    event = {"type": "app_home_opened", "user": MEMBER, "channel": "D0HOME", "tab": "home"}
    assert bot.event(event, event_id="EvRefusedHome").status == 200
    first, second = slack.wait_for("views.publish", count=2)[:2]
    assert part(first.body["view"], "Funnel")
    said = text_of(second.body["view"])
    error_id = re.search(r"error id `([0-9a-f]{10})`", said)
    assert error_id and error_id[1] in caplog.text and "invalid_blocks" in caplog.text
