"""The kinds of import file, by the name the command line uses."""

from __future__ import annotations

from clmbot.importing.base import ImportKind
from clmbot.importing.customers import CustomersImport
from clmbot.importing.events import EventsImport
from clmbot.importing.feedback import FeedbackImport
from clmbot.importing.stages import StagesImport

KINDS: dict[str, type[ImportKind]] = {
    "customers": CustomersImport,
    "events": EventsImport,
    "feedback": FeedbackImport,
    "stages": StagesImport,
}
