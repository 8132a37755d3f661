"""Column types that behave the same on SQLite and PostgreSQL.

SQLite has no time zones: it stores `DateTime(timezone=True)` as naive text and hands back
naive datetimes. `UTCDateTime` refuses naive values on the way in (a naive time is a bug
waiting for a daylight-saving change) and stamps UTC on the way out, so services always see
aware UTC datetimes whatever the backend.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: store aware datetimes (UTC)")
        utc = value.astimezone(UTC)
        # SQLite keeps the text as given; drop the zone so every stored value sorts as UTC.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        # The same text SQLAlchemy's SQLite DATETIME writes, made in C: bulk imports bind
        # a million of these, and the generic two-step processor doubles their cost.
        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is not UTC:
                if value.tzinfo is None:
                    raise ValueError(f"naive datetime {value!r}: store aware datetimes (UTC)")
                value = value.astimezone(UTC)
            return value.isoformat(" ", "microseconds")[:26]  # without "+00:00"

        return process

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSONB on PostgreSQL (indexable, compact), plain JSON text elsewhere.
JSONDict: Any = JSON().with_variant(JSONB(), "postgresql")
# The same, where "nothing" is SQL NULL rather than the JSON text 'null'.
JSONOrNull: Any = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
