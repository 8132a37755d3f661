"""`feedback.csv`: NPS and CSAT answers. Unlike events, feedback never creates a customer: an
answer from someone unknown is far more likely a wrong id than a new customer."""

from __future__ import annotations

from collections.abc import Hashable
from datetime import datetime
from typing import Any, ClassVar

from clmbot.forget import FORGOTTEN, forgotten_ids
from clmbot.importing import fields as f
from clmbot.importing.base import CustomerIds, ImportContext, KeyedChecker
from clmbot.importing.bulk import Upsert
from clmbot.importing.csvstream import Header, Row
from clmbot.store.models import FEEDBACK_SCALES, Feedback

FEEDBACK = Feedback.__table__
# row, external id, kind, score, comment, responded_at, extra columns
_Answer = tuple[Row, str, str, int, str | None, datetime, dict[str, str] | None]


class FeedbackChecker(KeyedChecker):
    key_names: ClassVar[str] = "customer, kind and responded_at"

    def _parse(self, fields: list[str]) -> tuple[str, str, int, str | None, datetime]:
        h, ctx = self.header, self.pctx
        ext = h.get(fields, "customer_external_id")
        if not ext:
            raise f.FieldError("customer_external_id is empty")
        kind = h.get(fields, "kind").lower()
        if kind not in FEEDBACK_SCALES:
            raise f.FieldError(f"kind {kind!r} is not nps or csat")
        low, high = FEEDBACK_SCALES[kind]
        score = f.score("score", h.get(fields, "score"), low, high, kind.upper())
        at = f.timestamp("responded_at", h.get(fields, "responded_at"), ctx.zone, ctx.now)
        comment = h.get(fields, "comment") or None
        if comment is not None:
            f.text("comment", comment, 5000)
        return ext, kind, score, comment, at

    def _key(self, values: tuple[Any, ...]) -> Hashable:
        ext, kind, _, _, at = values
        return ext, kind, at


class FeedbackImport:
    name: ClassVar[str] = "feedback"
    known: ClassVar[set[str]] = {
        "customer_external_id",
        "kind",
        "score",
        "comment",
        "responded_at",
    }
    required: ClassVar[set[str]] = {"customer_external_id", "kind", "score", "responded_at"}
    checker: ClassVar[type[FeedbackChecker]] = FeedbackChecker
    reject_column: ClassVar[str] = "reason"

    def __init__(self, ctx: ImportContext, header: Header) -> None:
        self.ctx = ctx
        self.ids = CustomerIds(ctx.conn)
        # Attributes only when the file has extra columns: a file without them leaves the
        # attributes an earlier file gave alone.
        self.extras = bool(header.extras)
        extra = ["attributes"] if self.extras else []
        self.upsert = Upsert(
            ctx.conn,
            FEEDBACK,
            ["customer_id", "kind", "score", "comment", "responded_at", "source", *extra],
            key=["customer_id", "kind", "responded_at"],
            update=["score", "comment", *extra],
        )

    def write(self, items: list[_Answer]) -> None:
        ctx = self.ctx
        ids = self.ids.known(item[1] for item in items)
        gone = forgotten_ids(ctx.conn, {item[1] for item in items} - set(ids))
        values = []
        for row, ext, kind, score, comment, at, attrs in items:
            if ext not in ids:
                ctx.reject(
                    row,
                    FORGOTTEN
                    if ext in gone
                    else f"no customer has external_id {ext}; import them with customers.csv first",
                )
                continue
            row_values = (ids[ext], kind, score, comment, at, "import")
            values.append((*row_values, attrs) if self.extras else row_values)
        if ctx.writing:
            ctx.count(*self.upsert.run(values))

    def finish(self) -> None:
        """Feedback rows are written chunk by chunk; nothing is left for the end."""
