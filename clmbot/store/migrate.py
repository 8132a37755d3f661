"""Alembic, driven from code: `clmbot db upgrade`, and the schema check before any work.

The migration scripts ship inside the package (`clmbot.migrations`, the repository's
`migrations/` folder), so this works from any directory and any kind of install.
"""

from __future__ import annotations

import time
from importlib.resources import files
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

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


# On PostgreSQL a migration that changes a table waits for whoever reads it, and every
# command after it waits behind the migration's request: so the upgrade asks for each lock
# for at most LOCK_WAIT, and when one is not given, gives back all it holds (the whole
# upgrade is one transaction) and tries again, LOCK_TRIES times.
LOCK_WAIT = "5s"
LOCK_TRIES = 12
_LOCK_NOT_AVAILABLE = "55P03"


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision`. Two at once (two copies of the bot starting, two
    admins) take turns: the second finds the work done."""
    cfg = alembic_config(engine)
    busy = SchemaNotReady(
        "another clmbot has been upgrading this database's schema for 5 minutes; try again "
        "when it has finished"
    )
    for _ in range(LOCK_TRIES):
        try:
            with engine.begin() as connection:
                hold_write_lock(connection, _UPGRADE_LOCK, wait=300, busy=busy)
                if connection.dialect.name == "postgresql":
                    connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'")
                cfg.attributes["connection"] = connection
                command.upgrade(cfg, revision)
            return
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
                raise
            time.sleep(1)
    raise SchemaNotReady(
        "the schema upgrade could not lock the tables it changes, 5 s at a time for a minute "
        "(an import or the morning's risk pass holds them); run clmbot db upgrade again when "
        "none is running"
    )


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
