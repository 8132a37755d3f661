"""Every package of clmbot is in pyproject.toml's list: an install that is not editable
(`pip install .`, a wheel) ships only what is listed."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).parents[1]


def test_every_package_is_listed():
    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(init.parent.relative_to(REPO).parts)
        for init in (REPO / "clmbot").rglob("__init__.py")
    }
    assert found <= listed, sorted(found - listed)
