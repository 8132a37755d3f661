from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from clmbot.demo.console import run
from clmbot.demo.session import Demo
from clmbot.demo.terminal import Style

SATURDAY = date(2026, 12, 5)  # the demo starts on the Friday before: Fri 4 Dec, 08:30 WIB


class Transcript:
    """What the demo printed, for asserting on, cleared with `take()`."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def say(self, line: str) -> None:
        self.lines.extend(line.split("\n"))

    def take(self) -> str:
        text, self.lines = "\n".join(self.lines), []
        return text


@pytest.fixture
def transcript() -> Transcript:
    return Transcript()


@pytest.fixture
def demo(tmp_path: Path, transcript: Transcript) -> Iterator[Demo]:
    folder = tmp_path / "demo"
    folder.mkdir()
    made = Demo(folder, say=transcript.say, style=Style(False), today=SATURDAY)
    yield made
    made.close()


@pytest.fixture
def typed(demo: Demo, transcript: Transcript):
    """Lines typed at the prompt; returns what the demo printed for them."""

    def type_lines(*lines: str) -> str:
        transcript.take()
        run(demo, lines, echo=False)
        return transcript.take()

    return type_lines
