"""Bulk writes of an import at sizes where the database's plans matter."""

from sqlalchemy import event, text

from clmbot.importing.runner import import_file
from tests.helpers import rows, write_csv


def _customers(n: int, name: str = "Customer") -> str:
    lines = ["external_id,name,stage"]
    lines += [f"C{i:05d},{name} {i},retention" for i in range(n)]
    return "\n".join(lines)


def test_look_ups_are_planned_for_their_values_and_right_after_a_big_load(
    engine, settings, now, tmp_path
):
    """The look-ups by external id run thousands of times in one import while the table grows
    from nothing; on PostgreSQL a plan kept from the empty table was a sequential scan for
    good. Each is planned for its own values (and only they: planned anew, the foreign-key
    check of every inserted row cost more than the insert), and they find every customer a
    big load wrote. By the unique index: a table just filled has no statistics, and planned
    without them a look-up read the whole table."""
    modes: list[str] = []
    writes: list[str] = []  # the mode while writing: kept plans, e.g. for foreign-key checks
    plans: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def plan_mode(conn, cursor, statement, parameters, context, executemany):
        if conn.dialect.name != "postgresql":
            return
        # The look-ups (not "is there any customer yet?", which looks up nothing).
        look_up = statement.startswith("SELECT customers.") and "WHERE" in statement
        seen = modes if look_up else writes
        if seen is modes or statement.startswith("UPDATE customers"):
            with conn.connection.driver_connection.cursor() as raw:
                seen.append(raw.execute("SHOW plan_cache_mode").fetchone()[0])
                if seen is modes:
                    plan = raw.execute("EXPLAIN " + statement, parameters).fetchall()
                    plans.append("\n".join(line for (line,) in plan))

    first = import_file(
        engine, "customers", write_csv(tmp_path / "a.csv", _customers(3000)), settings, now=now
    )
    assert (first.inserted, first.rejected) == (3000, 0)
    again = import_file(
        engine,
        "customers",
        write_csv(tmp_path / "b.csv", _customers(3200, "Renamed")),
        settings,
        now=now,
    )
    event.remove(engine, "before_cursor_execute", plan_mode)
    assert (again.inserted, again.updated, again.unchanged) == (200, 3000, 0)
    assert len(rows(engine, "customers", "id")) == 3200
    with engine.connect() as conn:
        history = conn.execute(text("SELECT count(*) FROM stage_history")).scalar()
    assert history == 3200  # a first stage each, no move
    if engine.dialect.name == "postgresql":
        assert modes and set(modes) == {"force_custom_plan"}
        assert writes and set(writes) == {"auto"}
        # 3,200 ids among 3,000 customers nobody analyzed: a scan of the table looks
        # cheaper to the planner, and is at this size; at a million it was 5 times slower.
        assert plans and not [plan for plan in plans if "Seq Scan" in plan]
