"""Alembic, driven from code: `clmbot db upgrade`, and the schema check before any work.

The migration scripts ship inside the package (`clmbot.migrations`, the repository's
`migrations/` folder), so this works from any directory and any kind of install.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from clmbot.store.db import hold_write_lock


class SchemaNotReady(RuntimeError):
    """The database is missing tables or is behind the code; the message says what to run."""


def migrations_dir() -> Path:
    return Path(str(files("clmbot.migrations")))


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option(
        "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
    )
    return cfg


# Names "clmbot's schema upgrades" among PostgreSQL's advisory locks.
_UPGRADE_LOCK = 0x636C6D75  # "clmu"


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision`. Two at once (two copies of the bot starting, two
    admins) take turns: the second finds the work done."""
    cfg = alembic_config(engine)
    busy = SchemaNotReady(
        "another clmbot has been upgrading this database's schema for 5 minutes; try again "
        "when it has finished"
    )
    with engine.begin() as connection:
        hold_write_lock(connection, _UPGRADE_LOCK, wait=300, busy=busy)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def head_revision() -> str | None:
    return ScriptDirectory(str(migrations_dir())).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def require_current(engine: Engine) -> None:
    """Refuse to work on a schema the code does not match, with the fix in the message."""
    current, head = current_revision(engine), head_revision()
    if current == head:
        return
    where = engine.url.render_as_string(hide_password=True)
    if current is None:
        raise SchemaNotReady(f"{where} has no clmbot tables yet; run: clmbot db upgrade")
    raise SchemaNotReady(
        f"{where} is at schema revision {current}, this clmbot needs {head}; run: clmbot db upgrade"
    )
