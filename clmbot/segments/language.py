"""The segment language: what a person types after `/clm segment`, read into a typed tree.

    stage:retention,advocacy plan:pro nps<7 inactive>30d -owner:@me attr."account tier":gold

Filters are separated by spaces and must all hold. A filter is `field`, an operator, and a
value: `:` matches any of the values separated by commas, `>`, `<`, `>=` and `<=` compare
with one value; a leading `-` negates the filter (a customer without a value, say no plan,
satisfies `-plan:pro`). A value in double quotes may hold spaces and commas; `""` inside
quotes is one `"`. No character is a wildcard: `%`, `_`, `*` and `\\` match themselves.

A bare word is the name of a saved segment and stands for its filters. Saved expressions may
not use other names, so expansion is one level deep and cannot loop.

Everything a person can type either parses or raises `SegmentError`, whose message says what
is wrong, where (1-based character position), and how to write it instead. Values are checked
here, not in SQL: a number is a number, a stage is one of the lifecycle's, a duration is
`30d` or `12w`. What a value means against the data (NULLs, time zones, events) is decided
in `clmbot.segments.compile`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

from clmbot.periods import PeriodError, parse_duration

Op = Literal[":", ">", "<", ">=", "<="]
COMPARISONS: tuple[Op, ...] = (">", "<", ">=", "<=")

MAX_LENGTH = 2000  # characters: a long expression is a paste gone wrong, not a segment
MAX_FILTERS = 50  # after saved names are expanded
MAX_ALTERNATIVES = 100  # values in one `field:a,b,…`
# The longest duration: further back than that, dates stop being dates (year 1).
MAX_DAYS = 36_500

ME = "@me"  # `owner:@me`: whoever asks, filled in when the segment is compiled


class SegmentError(ValueError):
    """A segment expression that cannot be used; the message says where and how to fix it."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.position = position  # 1-based character position of the offending token


@dataclass(frozen=True)
class Ago:
    """A length of time before today: `30d`, `12w` exactly, `3mo`, `1y` on the calendar.

    Only `signup` takes months and years (people think of customers' age in them); activity
    and time in stage take days and weeks, as everywhere else in clmbot.
    """

    count: int
    unit: Literal["d", "w", "mo", "y"]

    def before(self, day: date) -> date:
        """The day this long before `day`; a month back from the 31st is the month's last."""
        if self.unit in ("d", "w"):
            return day - timedelta(days=self.count * (7 if self.unit == "w" else 1))
        total = day.year * 12 + day.month - 1 - self.count * (12 if self.unit == "y" else 1)
        year, month = divmod(total, 12)
        month += 1
        following = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
        return date(year, month, min(day.day, (following - timedelta(days=1)).day))

    def __str__(self) -> str:
        return f"{self.count}{self.unit}"


# What a filter compares with: text, a Slack user id (or ME, or None for "no owner"), a score,
# an amount, a duration, a date, or an age.
Value = str | int | float | timedelta | date | Ago | None


@dataclass(frozen=True)
class Filter:
    """One filter. `values` are alternatives for `:` and exactly one value for a comparison.

    `position` is where the filter was typed, 1-based; for the filters of a saved segment, it
    is where its name was typed, and `saved` is that name.
    """

    field: str
    op: Op
    values: tuple[Value, ...]
    negated: bool = False
    position: int = 1
    key: str | None = None  # attr.NAME: NAME, exactly as imported
    saved: str | None = None

    @property
    def where(self) -> str:
        """Where it was typed, for messages: `at position 5` or `in saved segment 'vip'…`."""
        if self.saved is not None:
            return f"in saved segment '{self.saved}' (position {self.position})"
        return f"at position {self.position}"

    def __str__(self) -> str:
        """The filter in the language, quoted where needed: it parses back to itself."""
        name = self.field if self.key is None else f"attr.{_quote_if_needed(self.key, key=True)}"
        values = ",".join(_show_value(v) for v in self.values)
        return f"{'-' if self.negated else ''}{name}{self.op}{values}"


@dataclass(frozen=True)
class Segment:
    """Filters that must all hold, in the order typed; `text` is the expression as typed."""

    filters: tuple[Filter, ...]
    text: str

    @property
    def canonical(self) -> str:
        """The filters written out (saved names expanded): what is actually searched for."""
        return " ".join(str(f) for f in self.filters)

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(f.field for f in self.filters)


@dataclass(frozen=True)
class _FieldSpec:
    kind: Literal["stage", "text", "owner", "score", "money", "duration", "signup", "attr"]
    ops: tuple[Op, ...]
    example: str
    low: int = 0
    high: int = 0


_ALL_OPS: tuple[Op, ...] = (":", *COMPARISONS)
FIELDS: dict[str, _FieldSpec] = {
    "stage": _FieldSpec("stage", (":",), "stage:retention,advocacy"),
    "plan": _FieldSpec("text", (":",), "plan:pro"),
    "region": _FieldSpec("text", (":",), "region:emea,apac"),
    "tag": _FieldSpec("text", (":",), "tag:enterprise"),
    "owner": _FieldSpec("owner", (":",), "owner:@me"),
    "nps": _FieldSpec("score", _ALL_OPS, "nps<7", 0, 10),
    "csat": _FieldSpec("score", _ALL_OPS, "csat<=2", 1, 5),
    # Risk scores arrive with the churn-risk work; the grammar is ready for them.
    "risk": _FieldSpec("score", _ALL_OPS, "risk>=70", 0, 100),
    "mrr": _FieldSpec("money", _ALL_OPS, "mrr>=500"),
    # `:` reads as "for at least": inactive:30d is inactive>=30d.
    "inactive": _FieldSpec("duration", (":", *COMPARISONS), "inactive>30d"),
    "in-stage": _FieldSpec("duration", (":", *COMPARISONS), "in-stage>30d"),
    "signup": _FieldSpec("signup", _ALL_OPS, "signup<30d"),
    "attr": _FieldSpec("attr", _ALL_OPS, "attr.industry:retail"),
}
FIELD_LIST = (
    "stage, plan, region, tag, owner, nps, csat, risk, mrr, inactive, in-stage, signup "
    "and attr.NAME"
)

_QUOTES = '"\u201c\u201d'  # Slack's clients may turn typed quotes into curly ones
_OPERATOR_START = ":=<>"
_OPERATORS: tuple[tuple[str, Op], ...] = (
    (">=", ">="),
    ("<=", "<="),
    ("=>", ">="),
    ("=<", "<="),
    (":", ":"),
    ("=", ":"),
    (">", ">"),
    ("<", "<"),
)
_INT = re.compile(r"[0-9]{1,6}")
# The numbers a person types and the numbers an imported attribute holds: digits, an optional
# minus and decimals. No exponent, no thousands separator, no currency: "1,000" would be two
# alternatives, and "$5" is a typo to point out, not a number to guess.
NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_SIGNED_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_AGO = re.compile(r"([0-9]{1,5})(d|w|mo|y)")
_MENTION = re.compile(r"<@([UW][A-Z0-9]{2,31})(\|[^<>]*)?>|@?([UW][A-Z0-9]{2,31})")
_CONNECTIVES = {
    "or": "filters must all hold; for one or another value use a comma, e.g. plan:pro,team",
    "and": "filters separated by spaces must all hold already; leave it out",
    "not": "put a minus before a filter to negate it, e.g. -plan:free",
}


def parse_segment(
    text: str,
    *,
    stages: Sequence[str],
    saved: Mapping[str, str] | None = None,
    allow_saved: bool = True,
) -> Segment:
    """The tree of `text`. `stages`: the lifecycle's stages (`Settings.lifecycle.stages`);
    `saved`: saved segments, name -> expression, names matched in any case. With
    `allow_saved=False` (saving an expression), a saved name in `text` is refused, so that
    saved expressions never refer to each other.

    Raises `SegmentError` for anything else, and nothing else.
    """
    if not isinstance(text, str):
        raise SegmentError("the expression is not text", 1)
    if len(text) > MAX_LENGTH:
        raise SegmentError(
            f"the expression is {len(text):,} characters long; the most is {MAX_LENGTH:,}",
            MAX_LENGTH + 1,
        )
    for index, char in enumerate(text):
        if char == "\x00" or "\ud800" <= char <= "\udfff":
            raise SegmentError(
                f"the expression holds a character that cannot be searched for (U+{ord(char):04X})"
                f" at position {index + 1}; remove it",
                index + 1,
            )
    names = {name.lower(): expr for name, expr in (saved or {}).items()}
    filters: list[Filter] = []
    for token in _Lexer(text).tokens():
        if isinstance(token, _Word):
            filters.extend(_expand(token, names, stages, allow_saved))
        else:
            filters.append(_filter(token, stages))
        if len(filters) > MAX_FILTERS:
            raise SegmentError(
                f"too many filters ({len(filters)} by position {token.position}); "
                f"the most is {MAX_FILTERS}",
                token.position,
            )
    if not filters:
        raise SegmentError(
            "the expression is empty; write filters such as stage:retention plan:pro nps<7", 1
        )
    return Segment(tuple(filters), text)


# --- lexing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Word:
    """A bare word: a saved segment's name (or a mistake)."""

    word: str
    negated: bool
    position: int


@dataclass(frozen=True)
class _Raw:
    """`[-]field op value[,value…]`, still text; positions are 1-based."""

    negated: bool
    position: int  # of the filter, its minus included
    field_position: int
    field: str  # as typed, "attr" for attr.NAME
    key: str | None
    op: Op
    op_text: str
    op_position: int
    values: tuple[tuple[str, int], ...]  # (value, position)


class _Lexer:
    """Splits the text into filters and bare words, with the position of each part."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0

    def tokens(self) -> list[_Word | _Raw]:
        out: list[_Word | _Raw] = []
        text = self.text
        while self.i < len(text):
            if text[self.i].isspace():
                self.i += 1
                continue
            out.append(self._token())
        return out

    def _at_end(self) -> bool:
        return self.i >= len(self.text) or self.text[self.i].isspace()

    def _token(self) -> _Word | _Raw:
        text, start = self.text, self.i
        negated = text[self.i] == "-"
        if negated:
            self.i += 1
            if self._at_end():
                raise SegmentError(
                    f"'-' at position {start + 1} needs a filter right after it, e.g. -plan:free",
                    start + 1,
                )
        if text[self.i] in _QUOTES:
            raise SegmentError(
                f"a quoted value at position {self.i + 1} needs a field before it, "
                'e.g. plan:"pro plus"',
                self.i + 1,
            )
        field_start = self.i
        key: str | None = None
        if text[self.i : self.i + 5].lower() == "attr.":
            field = "attr"
            self.i += 5
            key_start = self.i
            quoted = self.i < len(text) and text[self.i] in _QUOTES
            key = self._quoted() if quoted else self._run(_OPERATOR_START)
            if not key:
                raise SegmentError(
                    f"attr. at position {field_start + 1} needs the name of an imported column, "
                    'e.g. attr.industry:retail or attr."account manager":Dana',
                    key_start + 1,
                )
            if self._at_end() or text[self.i] not in _OPERATOR_START:
                raise SegmentError(
                    f"attr.{_clip(key)} at position {field_start + 1} needs an operator and a "
                    'value right after the column name, e.g. attr."account manager":Dana',
                    self.i + 1 if not self._at_end() else field_start + 1,
                )
        else:
            field = self._run(_OPERATOR_START)
            if self._at_end():
                return _Word(field, negated, field_start + 1)
            if not field:
                raise SegmentError(
                    f"'{text[self.i]}' at position {self.i + 1} needs a field before it, "
                    "e.g. plan:pro or nps<7",
                    self.i + 1,
                )
            if field.endswith("!"):
                raise SegmentError(
                    f"'!' at position {self.i}: to negate a filter, put a minus before it, "
                    f"e.g. -{_clip(field[:-1])}:…",
                    self.i,
                )
        op_position = self.i + 1
        op_text, op = next((t, o) for t, o in _OPERATORS if text.startswith(t, self.i))
        self.i += len(op_text)
        values = self._values(op_position)
        return _Raw(
            negated, start + 1, field_start + 1, field, key, op, op_text, op_position, values
        )

    def _run(self, stops: str) -> str:
        """Characters up to whitespace, the end, or one of `stops`."""
        text, start = self.text, self.i
        while self.i < len(text) and not text[self.i].isspace() and text[self.i] not in stops:
            self.i += 1
        return text[start : self.i]

    def _quoted(self) -> str:
        """A quoted string starting at the current quote; `""` inside is one `"`."""
        text, open_at = self.text, self.i
        self.i += 1
        parts: list[str] = []
        while True:
            if self.i >= len(text):
                raise SegmentError(
                    f'the quote at position {open_at + 1} is not closed; add a closing "',
                    open_at + 1,
                )
            char = text[self.i]
            if char in _QUOTES:
                if self.i + 1 < len(text) and text[self.i + 1] in _QUOTES:
                    parts.append(char)
                    self.i += 2
                    continue
                self.i += 1
                return "".join(parts)
            parts.append(char)
            self.i += 1

    def _values(self, op_position: int) -> tuple[tuple[str, int], ...]:
        text = self.text
        values: list[tuple[str, int]] = []
        while True:
            if self._at_end():
                where = self.i + 1
                if values:
                    raise SegmentError(
                        f"nothing after the comma at position {where - 1}; remove the comma or "
                        "add a value after it",
                        where - 1,
                    )
                raise SegmentError(
                    f"the operator at position {op_position} needs a value right after it, "
                    "e.g. plan:pro or nps<7",
                    op_position,
                )
            position = self.i + 1
            if text[self.i] in _QUOTES:
                value = self._quoted()
                if not self._at_end() and text[self.i] != ",":
                    raise SegmentError(
                        f"put a space or a comma after the closing quote at position {self.i}",
                        self.i,
                    )
            else:
                value = self._run(",")
                if not value:
                    raise SegmentError(
                        f"an empty value at position {position}; write a value between the "
                        "commas or remove one",
                        position,
                    )
            values.append((value, position))
            if len(values) > MAX_ALTERNATIVES:
                raise SegmentError(
                    f"too many values at position {position}; one filter takes at most "
                    f"{MAX_ALTERNATIVES}",
                    position,
                )
            if self.i < len(text) and text[self.i] == ",":
                self.i += 1
                continue
            return tuple(values)


# --- parsing -----------------------------------------------------------------------------


def _expand(
    word: _Word, saved: Mapping[str, str], stages: Sequence[str], allow_saved: bool
) -> list[Filter]:
    """A saved name's filters, marked as coming from it; any other word is an error."""
    lower = word.word.lower()
    shown = ("-" if word.negated else "") + word.word
    at = word.position - (1 if word.negated else 0)
    if lower in saved:
        if not allow_saved:
            raise SegmentError(
                f"'{_clip(shown)}' at position {at} is a saved segment, and a saved segment "
                "cannot use another; write out its filters instead",
                at,
            )
        if word.negated:
            raise SegmentError(
                f"a saved segment cannot be negated: '{_clip(shown)}' at position {at}; negate "
                "its filters one by one instead",
                at,
            )
        try:
            inner = parse_segment(saved[lower], stages=stages, allow_saved=False)
        except SegmentError as exc:
            raise SegmentError(
                f"the saved segment '{lower}' at position {at} no longer works ({exc}); "
                "save it again with the filters fixed",
                at,
            ) from None
        return [
            Filter(f.field, f.op, f.values, f.negated, word.position, f.key, saved=lower)
            for f in inner.filters
        ]
    if lower in FIELDS or lower == "attr":
        raise SegmentError(
            f"{_clip(word.word)} at position {word.position} needs an operator and a value, "
            f"e.g. {FIELDS[lower].example}",
            word.position,
        )
    if lower in _CONNECTIVES:
        raise SegmentError(
            f"'{word.word}' at position {word.position}: {_CONNECTIVES[lower]}", word.position
        )
    known = [*saved, *FIELDS] if allow_saved else list(FIELDS)
    close = difflib.get_close_matches(lower, known, n=1, cutoff=0.6)
    if close and close[0] in FIELDS:
        hint = f"; did you mean a filter on {close[0]}, e.g. {FIELDS[close[0]].example}?"
    elif close:
        hint = f"; did you mean the saved segment '{close[0]}'?"
    else:
        hint = "; filters are field:value, e.g. plan:pro"
    what = "nor a saved segment" if allow_saved else "(saved segments cannot be used here)"
    raise SegmentError(f"'{_clip(shown)}' at position {at} is not a filter {what}{hint}", at)


def _filter(raw: _Raw, stages: Sequence[str]) -> Filter:
    field = raw.field.lower()
    spec = FIELDS.get(field)
    if spec is None:
        head, dot, rest = raw.field.partition(".")
        close = difflib.get_close_matches(head.lower() if dot else field, FIELDS, n=1, cutoff=0.6)
        if close and close[0] == "attr":
            hint = f"did you mean 'attr.{_clip(rest) if dot else 'NAME'}'?"
        elif close and not dot:
            hint = f"did you mean '{close[0]}'?"
        else:
            hint = f"fields are {FIELD_LIST}"
        raise SegmentError(
            f"unknown field '{_clip(raw.field)}' at position {raw.field_position}; {hint}",
            raw.field_position,
        )
    name = "attr." + (raw.key or "") if field == "attr" else field
    op = raw.op
    if op not in spec.ops:
        raise SegmentError(
            f"{name} cannot be compared with '{raw.op_text}' (position {raw.op_position}); "
            f"it takes ':', e.g. {spec.example}",
            raw.op_position,
        )
    if op != ":" and len(raw.values) > 1:
        listed = ",".join(_clip(v, 12) for v, _ in raw.values[:3])
        raise SegmentError(
            f"'{raw.op_text}' at position {raw.op_position} compares with one value, and "
            f"{name} was given {len(raw.values)}; for any of several values use ':', "
            f"e.g. {name}:{listed}",
            raw.op_position,
        )
    if spec.kind == "duration" and op == ":":
        if len(raw.values) > 1:
            raise SegmentError(
                f"{name}: at position {raw.op_position} takes one duration, e.g. {spec.example}",
                raw.op_position,
            )
        op = ">="  # inactive:30d = inactive for (at least) 30 days
    values = tuple(_value(field, spec, name, op, text, pos, stages) for text, pos in raw.values)
    return Filter(field, op, values, raw.negated, raw.position, raw.key)


def _value(
    field: str, spec: _FieldSpec, name: str, op: Op, text: str, pos: int, stages: Sequence[str]
) -> Value:
    kind = spec.kind
    if kind == "stage":
        stage = text.lower()
        if stage not in stages:
            close = difflib.get_close_matches(stage, list(stages), n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise SegmentError(
                f"unknown stage '{_clip(text)}' at position {pos}; {hint}"
                f"stages are {', '.join(stages)}",
                pos,
            )
        return stage
    if kind == "text":
        return text
    if kind == "owner":
        return _owner(text, pos)
    if kind == "score":
        if not _INT.fullmatch(text):
            raise SegmentError(
                f"'{_clip(text)}' at position {pos} is not a whole number "
                f"({field} takes {spec.low} to {spec.high})",
                pos,
            )
        score = int(text)
        if not spec.low <= score <= spec.high:
            raise SegmentError(
                f"{field} takes {spec.low} to {spec.high}; {score} at position {pos} is out of "
                "range",
                pos,
            )
        return score
    if kind == "money" or (kind == "attr" and op != ":"):
        return _number(text, pos, name, spec.example)
    if kind == "attr":
        return text
    if kind == "duration":
        try:
            duration = parse_duration(text)
        except PeriodError:
            raise SegmentError(
                f"'{_clip(text)}' at position {pos} is not a duration; use days or weeks, "
                f"e.g. {name}>30d or {name}>12w",
                pos,
            ) from None
        if duration.days > MAX_DAYS:
            raise SegmentError(
                f"{text} at position {pos} is too long ago; the most is {MAX_DAYS}d", pos
            )
        return duration
    return _signup(text, pos, op)


def _owner(text: str, pos: int) -> str | None:
    lower = text.lower()
    if lower in ("@me", "me"):
        return ME
    if lower in ("none", "nobody"):
        return None
    # A Slack ID as typed (U0123ABCD, @U0123ABCD) or as a mention Slack sends (<@U0123ABCD>,
    # <@U0123ABCD|dana>). Case matters: "wendy" is a name, not the ID WENDY.
    mention = _MENTION.fullmatch(text)
    if mention:
        return mention[1] or mention[3]
    raise SegmentError(
        f"'{_clip(text)}' at position {pos} is not a Slack user; write owner:@me, a mention, "
        "an ID such as owner:U0123ABCD, or owner:none",
        pos,
    )


def _number(text: str, pos: int, name: str, example: str) -> float:
    if NUMBER.fullmatch(text):
        return float(text)
    if _SIGNED_NUMBER.fullmatch(text):  # +5, 5., .5: a number, written differently
        return float(text)
    hint = (
        "without a currency sign"
        if text[:1] in "$€£¥" or text[-1:] in "$€£¥"
        else "in digits, with a dot for decimals and no thousands separator"
    )
    raise SegmentError(
        f"'{_clip(text)}' at position {pos} is not a number; write it {hint}, e.g. {example}",
        pos,
    )


def _signup(text: str, pos: int, op: Op) -> date | Ago:
    lower = text.lower()
    ago = _AGO.fullmatch(lower)
    if ago:
        if op == ":":
            raise SegmentError(
                f"signup:{text} is ambiguous (position {pos}); write signup<{text} for "
                f"customers who signed up in the last {text}, or signup>{text} for earlier ones",
                pos,
            )
        count, unit = int(ago[1]), ago[2]
        days = count * {"d": 1, "w": 7, "mo": 31, "y": 366}[unit]
        if days > MAX_DAYS:
            raise SegmentError(f"{text} at position {pos} is too long ago; the most is 100y", pos)
        return Ago(count, unit)  # type: ignore[arg-type]
    if _DATE.fullmatch(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise SegmentError(
        f"'{_clip(text)}' at position {pos} is not a date or a duration; write a date as "
        "2024-05-01, or how long ago as 30d, 12w, 3mo or 1y (signup<30d: signed up in the "
        "last 30 days)",
        pos,
    )


# --- writing back ------------------------------------------------------------------------


def _clip(text: str, most: int = 40) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


_PLAIN_VALUE = re.compile(r"[^\s,\"\u201c\u201d]+")
_PLAIN_KEY = re.compile(r"[^\s:=<>\"\u201c\u201d]+")


def _quote_if_needed(text: str, *, key: bool = False) -> str:
    plain = (_PLAIN_KEY if key else _PLAIN_VALUE).fullmatch(text)
    if plain and not (key is False and text[0] in _QUOTES):
        return text
    return '"' + re.sub(r"([\"\u201c\u201d])", r"\1\1", text) + '"'


def _show_value(value: Value) -> str:
    if value is None:
        return "none"
    if isinstance(value, timedelta):
        return f"{value.days}d"
    if isinstance(value, float):
        # Digits only (no exponent): the number grammar has none.
        return format(Decimal(repr(value)), "f").removesuffix(".0") if value else "0"
    if isinstance(value, str):
        return _quote_if_needed(value)
    return str(value)
