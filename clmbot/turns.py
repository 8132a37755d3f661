"""Turns at working out answers: a few at once per process (`clmbot.slack.bot`), handed back
while the thread holding one only waits for another thread's work.

A turn is held across the answer's queries and rendering, so that the threads answering do
not take the interpreter from each other at every return from the database. A thread that
waits for a report another thread is working out (`clmbot.store.cache.kept`, up to a minute)
does no such work: holding its turn meanwhile, four asks of one slow report (the funnel at a
million customers, worked out in the background at the lowest priority as the bot starts)
held every turn, and no other command of that process was answered until it was done.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_held = threading.local()


@contextmanager
def taken(turns: threading.Semaphore) -> Iterator[None]:
    """Wait for one of `turns`, and hold it for the block."""
    with turns:
        _held.turns = turns
        try:
            yield
        finally:
            _held.turns = None


@contextmanager
def given_back() -> Iterator[None]:
    """Hand this thread's turn back for the block, and wait for one again after it; nothing
    when the thread holds none (a background job, a test, the CLI)."""
    turns: threading.Semaphore | None = getattr(_held, "turns", None)
    if turns is None:
        yield
        return
    _held.turns = None
    turns.release()
    try:
        yield
    finally:
        turns.acquire()
        _held.turns = turns
