"""The segment language: what parses to what, and what every mistake is told."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from clmbot.config import DEFAULT_STAGES
from clmbot.segments.language import (
    MAX_ALTERNATIVES,
    MAX_FILTERS,
    MAX_LENGTH,
    ME,
    Ago,
    Filter,
    SegmentError,
    parse_segment,
)


def parse(text: str, **kwargs):
    return parse_segment(text, stages=DEFAULT_STAGES, **kwargs)


def only(text: str, **kwargs) -> Filter:
    (f,) = parse(text, **kwargs).filters
    return f


def error(text: str, **kwargs) -> SegmentError:
    with pytest.raises(SegmentError) as info:
        parse(text, **kwargs)
    return info.value


# --- what parses -------------------------------------------------------------------------


def test_the_example_from_the_product():
    segment = parse("stage:retention,advocacy plan:pro nps<7 inactive>30d")
    assert segment.filters == (
        Filter("stage", ":", ("retention", "advocacy"), position=1),
        Filter("plan", ":", ("pro",), position=26),
        Filter("nps", "<", (7,), position=35),
        Filter("inactive", ">", (timedelta(days=30),), position=41),
    )
    assert segment.text == "stage:retention,advocacy plan:pro nps<7 inactive>30d"
    assert segment.canonical == segment.text
    assert segment.fields == {"stage", "plan", "nps", "inactive"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nps>=9", Filter("nps", ">=", (9,))),
        ("nps=>9", Filter("nps", ">=", (9,))),
        ("csat<=2", Filter("csat", "<=", (2,))),
        ("nps:9,10", Filter("nps", ":", (9, 10))),
        ("nps=0", Filter("nps", ":", (0,))),
        ("risk>70", Filter("risk", ">", (70,))),
        ("mrr>1250.50", Filter("mrr", ">", (1250.5,))),
        ("mrr<+5", Filter("mrr", "<", (5.0,))),
        ("mrr:0,.5", Filter("mrr", ":", (0.0, 0.5))),
        ("-plan:free", Filter("plan", ":", ("free",), negated=True)),
        ("STAGE:Retention", Filter("stage", ":", ("retention",))),
        ("Plan:Pro", Filter("plan", ":", ("Pro",))),
        ("tag:a_b%c\\d", Filter("tag", ":", ("a_b%c\\d",))),
        ('plan:a"b', Filter("plan", ":", ('a"b',))),
        ("inactive>12w", Filter("inactive", ">", (timedelta(days=84),))),
        ("inactive:30d", Filter("inactive", ">=", (timedelta(days=30),))),
        ("in-stage<=0d", Filter("in-stage", "<=", (timedelta(0),))),
        ("signup<30d", Filter("signup", "<", (Ago(30, "d"),))),
        ("signup>1Y", Filter("signup", ">", (Ago(1, "y"),))),
        ("signup>=3mo", Filter("signup", ">=", (Ago(3, "mo"),))),
        ("signup>2024-01-01", Filter("signup", ">", (date(2024, 1, 1),))),
        (
            "signup:2024-01-01,2024-02-29",
            Filter("signup", ":", (date(2024, 1, 1), date(2024, 2, 29))),
        ),
        ("owner:@me", Filter("owner", ":", (ME,))),
        ("owner:me", Filter("owner", ":", (ME,))),
        ("owner:none", Filter("owner", ":", (None,))),
        ("owner:U0123ABCD", Filter("owner", ":", ("U0123ABCD",))),
        ("owner:@U0123ABCD", Filter("owner", ":", ("U0123ABCD",))),
        ("owner:<@U0123ABCD>", Filter("owner", ":", ("U0123ABCD",))),
        ("owner:<@W0123ABCD|dana>", Filter("owner", ":", ("W0123ABCD",))),
        ("attr.industry:retail", Filter("attr", ":", ("retail",), key="industry")),
        ("ATTR.Industry:Retail", Filter("attr", ":", ("Retail",), key="Industry")),
        ("attr.seats>=10", Filter("attr", ">=", (10.0,), key="seats")),
        ("attr.a.b:c", Filter("attr", ":", ("c",), key="a.b")),
        ("attr.seats:10", Filter("attr", ":", ("10",), key="seats")),
    ],
)
def test_filters(text, expected):
    assert only(text) == expected


def test_quoted_values_hold_spaces_commas_and_quotes():
    assert only('plan:"pro plus"').values == ("pro plus",)
    assert only('plan:"a,b",c').values == ("a,b", "c")
    assert only('plan:"say ""hi"""').values == ('say "hi"',)
    assert only('plan:""').values == ("",)
    assert only("plan:\u201cpro plus\u201d").values == ("pro plus",)  # Slack's curly quotes
    f = only('attr."account manager":"Dana X"')
    assert (f.key, f.values) == ("account manager", ("Dana X",))
    assert only('attr."a ""b""":1').key == 'a "b"'


def test_unicode_spaces_separate_filters():
    assert len(parse("plan:pro\u00a0nps<7\tstage:retention\n").filters) == 3


def test_canonical_text_parses_back_to_the_same_filters():
    text = 'plan:"a b",c -attr."x ""y""">-2.5 owner:none,@me signup<3mo inactive:30d mrr:1e0'
    with pytest.raises(SegmentError):
        parse(text)  # 1e0: no exponents
    segment = parse(text.replace("mrr:1e0", "mrr:0.10"))
    again = parse(segment.canonical)
    assert [(f.field, f.op, f.values, f.negated, f.key) for f in again.filters] == [
        (f.field, f.op, f.values, f.negated, f.key) for f in segment.filters
    ]
    assert "inactive>=30d" in segment.canonical


def test_saved_names_expand_in_place_in_any_case():
    saved = {"VIP": "plan:pro mrr>500", "emea": "region:emea"}
    segment = parse("stage:retention vip EMEA", saved=saved)
    assert [(f.field, f.position, f.saved) for f in segment.filters] == [
        ("stage", 1, None),
        ("plan", 17, "vip"),
        ("mrr", 17, "vip"),
        ("region", 21, "emea"),
    ]
    assert segment.filters[1].where == "in saved segment 'vip' (position 17)"
    assert segment.canonical == "stage:retention plan:pro mrr>500 region:emea"


# --- what every mistake is told ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("", 1, "the expression is empty; write filters such as stage:retention"),
        ("  \t ", 1, "the expression is empty"),
        ("stag:retention", 1, "unknown field 'stag' at position 1; did you mean 'stage'?"),
        ("plan:pro xyz:1", 10, "unknown field 'xyz' at position 10; fields are stage, plan"),
        ("-instage>3d", 2, "unknown field 'instage' at position 2; did you mean 'in-stage'?"),
        ("atr.x:1", 1, "unknown field 'atr.x' at position 1; did you mean 'attr.x'?"),
        ("atr:1", 1, "unknown field 'atr' at position 1; did you mean 'attr.NAME'?"),
        ("stage.x:1", 1, "unknown field 'stage.x' at position 1; fields are stage"),
        ("nps:abc", 5, "'abc' at position 5 is not a whole number (nps takes 0 to 10)"),
        ("nps<11", 5, "nps takes 0 to 10; 11 at position 5 is out of range"),
        ("csat:0", 6, "csat takes 1 to 5; 0 at position 6 is out of range"),
        ("nps:-1", 5, "'-1' at position 5 is not a whole number"),
        ("nps>7,8", 4, "'>' at position 4 compares with one value, and nps was given 2; for any "
         "of several values use ':', e.g. nps:7,8"),
        ("stage:retension", 7, "unknown stage 'retension' at position 7; did you mean "
         "'retention'? stages are awareness, consideration"),
        ("stage:zzz", 7, "unknown stage 'zzz' at position 7; stages are awareness"),
        ("stage>retention", 6, "stage cannot be compared with '>' (position 6); it takes ':', "
         "e.g. stage:retention,advocacy"),
        ("tag>=x", 4, "tag cannot be compared with '>='"),
        ('plan:"pro', 6, 'the quote at position 6 is not closed; add a closing "'),
        ('attr."a b:1', 6, "the quote at position 6 is not closed"),
        ('plan:"pro"x', 10, "put a space or a comma after the closing quote at position 10"),
        ('"pro plus"', 1, "a quoted value at position 1 needs a field before it"),
        ("plan:", 5, "the operator at position 5 needs a value right after it"),
        ("plan: pro", 5, "the operator at position 5 needs a value"),
        ("plan:a,", 7, "nothing after the comma at position 7"),
        ("plan:a,,b", 8, "an empty value at position 8"),
        ("plan:,a", 6, "an empty value at position 6"),
        (":pro", 1, "':' at position 1 needs a field before it"),
        ("-", 1, "'-' at position 1 needs a filter right after it"),
        ("plan:pro - nps<7", 10, "'-' at position 10 needs a filter"),
        ("plan!:free", 5, "'!' at position 5: to negate a filter, put a minus before it"),
        ("stage", 1, "stage at position 1 needs an operator and a value, e.g. stage:retention"),
        ("attr.seats", 1, "attr.seats at position 1 needs an operator and a value"),
        ("attr.:x", 6, "attr. at position 1 needs the name of an imported column"),
        ('attr."k"x:1', 9, "attr.k at position 1 needs an operator and a value right after"),
        ("mrr>$500", 5, "'$500' at position 5 is not a number; write it without a currency sign"),
        ("mrr>1,000", 4, "'>' at position 4 compares with one value"),
        ("mrr:1k", 5, "'1k' at position 5 is not a number; write it in digits"),
        ("attr.seats>ten", 12, "'ten' at position 12 is not a number"),
        ("inactive>3mo", 10, "'3mo' at position 10 is not a duration; use days or weeks, "
         "e.g. inactive>30d or inactive>12w"),
        ("inactive>soon", 10, "is not a duration"),
        ("inactive:30d,60d", 9, "inactive: at position 9 takes one duration"),
        ("inactive>99999w", 10, "99999w at position 10 is too long ago; the most is 36500d"),
        ("signup>999y", 8, "999y at position 8 is too long ago; the most is 100y"),
        ("signup:30d", 8, "signup:30d is ambiguous (position 8); write signup<30d for customers "
         "who signed up in the last 30d, or signup>30d for earlier ones"),
        ("signup>2024-02-30", 8, "'2024-02-30' at position 8 is not a date or a duration"),
        ("signup>yesterday", 8, "is not a date or a duration; write a date as 2024-05-01"),
        ("owner:wendy", 7, "'wendy' at position 7 is not a Slack user; write owner:@me"),
        ("owner:u0123abcd", 7, "is not a Slack user"),
        ("foo", 1, "'foo' at position 1 is not a filter nor a saved segment; filters are "
         "field:value"),
        ("plan:pro or plan:team", 10, "'or' at position 10: filters must all hold; for one or "
         "another value use a comma, e.g. plan:pro,team"),
        ("plan:pro AND nps<7", 10, "'AND' at position 10: filters separated by spaces must all "
         "hold already"),
        ("not plan:pro", 1, "'not' at position 1: put a minus before a filter"),
        ("a\x00b", 2, "holds a character that cannot be searched for (U+0000) at position 2"),
        ("plan:\ud800", 6, "(U+D800) at position 6"),
    ],
)  # fmt: skip
def test_mistakes_say_where_and_how(text, position, message):
    exc = error(text)
    assert message in str(exc)
    assert exc.position == position
    assert isinstance(exc, ValueError)


def test_suggestions_among_saved_names():
    exc = error("vpi", saved={"vip": "plan:pro"})
    assert str(exc) == (
        "'vpi' at position 1 is not a filter nor a saved segment; did you mean the saved "
        "segment 'vip'?"
    )
    exc = error("stagee", saved={"vip": "plan:pro"})
    assert "did you mean a filter on stage, e.g. stage:retention,advocacy?" in str(exc)


def test_a_saved_segment_cannot_be_negated():
    exc = error("plan:pro -VIP", saved={"vip": "mrr>5"})
    assert exc.position == 10
    assert "a saved segment cannot be negated: '-VIP' at position 10" in str(exc)


def test_names_are_refused_where_saved_segments_cannot_be_used():
    exc = error("plan:pro vip", saved={"vip": "mrr>5"}, allow_saved=False)
    assert "'vip' at position 10 is a saved segment, and a saved segment cannot use another" in (
        str(exc)
    )
    exc = error("xyz", saved={"vip": "mrr>5"}, allow_saved=False)
    assert "(saved segments cannot be used here)" in str(exc)


def test_a_broken_saved_segment_names_itself():
    exc = error("mrr>5 old", saved={"old": "stage:gone"})
    assert exc.position == 7
    assert str(exc).startswith("the saved segment 'old' at position 7 no longer works (unknown "
                               "stage 'gone' at position 7")  # fmt: skip


def test_limits():
    exc = error("plan:x " * 400)
    assert exc.position == MAX_LENGTH + 1
    assert "the most is 2,000" in str(exc)
    exc = error(" ".join(["plan:x"] * (MAX_FILTERS + 1)))
    assert "too many filters" in str(exc)
    assert exc.position == MAX_FILTERS * 7 + 1
    exc = error("plan:" + ",".join(["x"] * (MAX_ALTERNATIVES + 1)))
    assert "one filter takes at most 100" in str(exc)
    assert parse("plan:" + ",".join(["x"] * MAX_ALTERNATIVES))
    many = {"big": " ".join(["plan:x"] * 30)}
    assert "too many filters" in str(error("big big", saved=many))


def test_not_text():
    with pytest.raises(SegmentError):
        parse_segment(None, stages=DEFAULT_STAGES)  # type: ignore[arg-type]


def test_ago_counts_calendar_months_back():
    assert Ago(1, "mo").before(date(2026, 3, 31)) == date(2026, 2, 28)
    assert Ago(1, "y").before(date(2024, 2, 29)) == date(2023, 2, 28)
    assert Ago(12, "mo").before(date(2026, 1, 15)) == date(2025, 1, 15)
    assert Ago(2, "w").before(date(2026, 1, 15)) == date(2026, 1, 1)
    assert str(Ago(3, "mo")) == "3mo"
