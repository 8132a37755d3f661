"""The `clmbot` command. Parses what the admin typed, calls the services, prints the result.

Exit status: 0 on success, 1 when some input was rejected, 2 on a usage or setup error.
Every error is one line on stderr that says what was wrong and how to fix it.
"""

from __future__ import annotations

import csv
import functools
import getpass
import os
import sys
import traceback
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from clmbot import audit, files, plain
from clmbot.commands.run import run_command as run_words
from clmbot.commands.spec import Actor
from clmbot.config import ConfigError, Settings, load_settings
from clmbot.importing.runner import KINDS, FileProblem, ImportBusy, OutputProblem, import_file
from clmbot.lifecycle import UnknownStage
from clmbot.periods import ACCEPTED, PeriodError, parse_since
from clmbot.results import (
    AuditResult,
    ChartResult,
    ForgetConfirmResult,
    FunnelChartResult,
    HelpResult,
    MatchesResult,
    NoMatchResult,
    RefusedResult,
    Result,
    SegmentExportResult,
    SurveyConfirmResult,
    UsageResult,
)
from clmbot.sample.business import generate
from clmbot.store import backup, migrate
from clmbot.store.db import make_engine, session_scope

EXIT_REJECTED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


class Failure(click.ClickException):
    """An error for the person at the terminal: one line, and an exit status."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = code

    def show(self, file: Any = None) -> None:
        click.echo(f"clmbot: {self.message}", err=True)


class Runtime:
    """Settings and engine, made on first use so that `--help` needs neither."""

    @cached_property
    def settings(self) -> Settings:
        return load_settings()

    @cached_property
    def engine(self) -> Engine:
        """For `db upgrade`, which may create the database."""
        return make_engine(self.settings.database_url)

    @cached_property
    def existing_engine(self) -> Engine:
        """For every other command: a SQLite file that does not exist is refused, not made."""
        return make_engine(self.settings.database_url, create=False)

    def ready_engine(self) -> Engine:
        """The engine, after checking the schema matches this code."""
        migrate.require_current(self.existing_engine)
        return self.existing_engine


class Group(click.Group):
    """Turns the errors a person can fix into `Failure`s instead of tracebacks."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ConfigError, migrate.SchemaNotReady, PeriodError, UnknownStage) as exc:
            raise Failure(str(exc)) from None
        except FileProblem as exc:
            raise Failure(str(exc), EXIT_REJECTED) from None
        except (ImportBusy, OutputProblem, backup.BackupProblem) as exc:
            raise Failure(str(exc), EXIT_USAGE) from None
        except KeyboardInterrupt:
            raise Failure("stopped (Ctrl-C); what was under way was not saved", 130) from None
        except BrokenPipeError:
            # The reader stopped reading (`clmbot risk | head`): nothing is wrong. Python
            # would complain again when it flushes stdout at exit; point it at nothing.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
        except OperationalError as exc:
            first = str(exc.orig or exc).strip().splitlines()[0]
            if "database is locked" in first:
                raise Failure(
                    "the database is busy: another import or a long write holds it; try again "
                    "when it has finished"
                ) from None
            raise Failure(f"cannot use the database: {first}; check DATABASE_URL") from None
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception:
            # A bug, not the user's doing: the traceback goes to a private file (it may name
            # tables and columns, never values: engines hide statement parameters), the user
            # gets a line.
            error_id = uuid.uuid4().hex[:10]
            try:
                report = files.write_private(
                    files.state_dir() / "errors",
                    f"error-{error_id}.log",
                    files.scrub_values(traceback.format_exc()),
                )
                where = f"the details are in {report}, please attach them when you report it"
            except OSError as exc:
                where = f"the details could not be saved ({exc.strerror or exc})"
            raise Failure(
                f"internal error {error_id}: this is a bug in clmbot, not in what you typed; "
                f"{where}",
                EXIT_INTERNAL,
            ) from None


def now() -> datetime:
    """The one place the CLI reads the clock; services take it as an argument."""
    return datetime.now(UTC)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="clmbot")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """clmbot: run the customer lifecycle from Slack.

    Settings come from the environment (and .env) and clmbot.toml; see the README.
    """
    ctx.obj = Runtime()


pass_runtime: Callable[..., Any] = click.make_pass_decorator(Runtime)


@cli.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
@pass_runtime
def db_upgrade(rt: Runtime) -> None:
    """Create or update the tables (Alembic `upgrade head` on DATABASE_URL)."""
    migrate.upgrade(rt.engine)
    where = rt.engine.url.render_as_string(hide_password=True)
    click.echo(f"{where}: schema at revision {migrate.current_revision(rt.engine)} (latest)")


@db.command("current")
@pass_runtime
def db_current(rt: Runtime) -> None:
    """Show the schema revision of the database and the one this clmbot needs."""
    current, head = migrate.current_revision(rt.existing_engine), migrate.head_revision()
    state = "up to date" if current == head else "behind: run clmbot db upgrade"
    click.echo(f"database: {current or 'no clmbot tables'}; clmbot needs: {head} ({state})")


@db.command("backup")
@click.argument("file", type=click.Path(path_type=Path))
@pass_runtime
def db_backup(rt: Runtime, file: Path) -> None:
    """Copy the SQLite database to FILE (private), safely while the bot runs."""
    made = backup.backup_sqlite(rt.existing_engine, file)
    size = f"{made.bytes / 1_048_576:.1f} MB"
    click.echo(f"{made.path}: a copy of the database at revision {made.revision} ({size})")


@cli.command("import")
@click.argument("kind", type=click.Choice(sorted(KINDS)))
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--strict", is_flag=True, help="Import nothing if any row is bad.")
@pass_runtime
def import_command(rt: Runtime, kind: str, file: Path, strict: bool) -> None:
    """Import customers, events, feedback or stages (history) from a CSV file (see the README
    for columns).

    Importing the same file twice changes nothing. Rows that fail validation are written,
    each with its reason, to FILE.rejected.csv, and the exit status is 1.
    """
    if not file.exists():
        raise Failure(f"{file}: no such file", EXIT_USAGE)
    engine = rt.ready_engine()

    def waiting(message: str) -> None:
        click.echo(f"clmbot: {message}", err=True)

    run = functools.partial(
        import_file,
        engine,
        kind,
        file,
        rt.settings,
        now=now(),
        strict=strict,
        waiting=waiting,
        actor=f"cli:{getpass.getuser()}",
    )
    if sys.stderr.isatty():
        with click.progressbar(
            length=max(file.stat().st_size, 1), label=f"importing {file.name}", file=sys.stderr
        ) as bar:
            report = run(progress=lambda done, total: bar.update(done - bar.pos))
    else:
        report = run()
    click.echo(report.summary())
    if not report.ok:
        sys.exit(EXIT_REJECTED)


def since_option(default: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--since WHEN`: the same words as `/clm … since`, read by `parse_since`."""
    return click.option(
        "--since",
        "since_text",
        metavar="WHEN",
        help=f"Start of the period, {ACCEPTED}. Default: {default}.",
    )


def ask(rt: Runtime, words: str | list[str], *, by: str | None = None) -> Result:
    """Run words as `/clm` would, as an admin at this terminal; what cannot be answered (a
    usage error, no such customer, several) becomes one line on stderr and exit status 2."""
    actor = Actor(by or f"cli:{getpass.getuser()}", is_admin=True, channel="cli")
    settings = rt.settings
    with session_scope(rt.ready_engine()) as session:
        result = run_words(words, session=session, settings=settings, now=now(), actor=actor)
    if isinstance(result, UsageResult):
        problem = plain.unmark(result.problem)
        raise Failure(f"{_lower_first(problem)} (usage: clmbot {result.spec.usage})")
    if isinstance(result, (MatchesResult, NoMatchResult, RefusedResult)):
        raise Failure(_lower_first(plain.render(result, settings.timezone)))
    if isinstance(result, HelpResult) and result.note:
        raise Failure(_lower_first(plain.unmark(result.note)))
    return result


def show(rt: Runtime, result: Result) -> None:
    click.echo(plain.render(result, rt.settings.timezone, display=rt.settings.display))


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


@cli.command("funnel")
@since_option("90 days")
@click.option(
    "--chart",
    is_flag=True,
    help="Write the funnel as a picture, funnel.png, here (as /clm funnel chart posts it).",
)
@pass_runtime
def funnel_command(rt: Runtime, since_text: str | None, chart: bool) -> None:
    """Customers per stage, conversion between stages, median days in each stage."""
    words = [
        "funnel",
        *(["since", since_text] if since_text else []),
        *(["chart"] if chart else []),
    ]
    result = ask(rt, words)
    if isinstance(result, FunnelChartResult):
        # Private like every file clmbot writes, though the chart holds counts only.
        path = files.write_private_bytes(Path.cwd() / result.file.filename, result.file.content)
        click.echo(f"{plain.render(result, rt.settings.timezone)} Written to {path}")
        return
    show(rt, result)


@cli.command("stage")
@click.argument("ref")
@click.argument("stage")
@click.argument("reason", nargs=-1)
@click.option("--by", default=None, help="Who made the move (default: cli:<your login>).")
@pass_runtime
def stage_command(
    rt: Runtime, ref: str, stage: str, reason: tuple[str, ...], by: str | None
) -> None:
    """Move a customer (external id, e-mail or name) to STAGE, with an optional reason."""
    show(rt, ask(rt, ["stage", ref, stage, *reason], by=by))


@cli.command("customer")
@click.argument("ref", nargs=-1, required=True)
@pass_runtime
def customer_command(rt: Runtime, ref: tuple[str, ...]) -> None:
    """A customer's card: stage and history, owner, plan, MRR, activity, NPS and CSAT.

    REF is an external id, an e-mail, or the start of a name.
    """
    show(rt, ask(rt, ["customer", *ref]))


# Filters may start with "-" (`-plan:free`): words, not options, for these commands.
_WORDS = {"ignore_unknown_options": True}


@cli.command("segment", context_settings=_WORDS)
@click.argument("words", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option(
    "--format",
    "output",
    type=click.Choice(["table", "csv"]),
    default="table",
    show_default=True,
    help="csv: every matching customer, as `/clm segment … export` sends them.",
)
@pass_runtime
def segment_command(rt: Runtime, words: tuple[str, ...], output: str) -> None:
    """The customers that match segment filters, or a saved segment; `save NAME FILTERS`,
    `delete NAME`. Quote a filter whose value has spaces: 'plan:"pro plus"'.

    Filters: stage plan region tag owner nps csat mrr inactive in-stage signup attr.NAME, e.g.
    clmbot segment stage:retention,advocacy plan:pro nps<7 inactive>30d
    """
    text = " ".join(words)
    if output == "csv":
        if words and words[-1].lower() == "export":
            text = " ".join(words[:-1])
        result = ask(rt, f"segment {text} export")
        assert isinstance(result, SegmentExportResult)
        sys.stdout.buffer.write(result.file.content)
        sys.stdout.flush()
        return
    show(rt, ask(rt, f"segment {text}"))


@cli.command("segments")
@pass_runtime
def segments_command(rt: Runtime) -> None:
    """The saved segments, each with how many customers it selects now."""
    show(rt, ask(rt, ["segments"]))


def _score_command(kind: str) -> None:
    @cli.command(kind, context_settings=_WORDS)
    @click.argument("words", nargs=-1, type=click.UNPROCESSED)
    @pass_runtime
    def command(rt: Runtime, words: tuple[str, ...]) -> None:
        result = ask(rt, f"{kind} {' '.join(words)}")
        if isinstance(result, ChartResult):
            path = files.write_private_bytes(Path.cwd() / result.file.filename, result.file.content)
            click.echo(f"{plain.render(result, rt.settings.timezone)} Written to {path}")
            return
        show(rt, result)

    scale = "0-10" if kind == "nps" else "1-5"
    command.help = (
        f"{kind.upper()} ({scale}) with its 95% interval and the trend by month, the same words "
        f"as /clm {kind}: [SEGMENT | FILTERS] [since WHEN] [by stage|plan|region|owner] [chart]. "
        f"`chart` writes {kind}-trend.png here."
    )


_score_command("nps")
_score_command("csat")


@cli.command("feedback", context_settings=_WORDS)
@click.argument("words", nargs=-1, type=click.UNPROCESSED)
@pass_runtime
def feedback_command(rt: Runtime, words: tuple[str, ...]) -> None:
    """The latest comments, ten at a time: [CUSTOMER | SEGMENT | FILTERS] [since WHEN]
    [detractors] [page N], the same words as /clm feedback."""
    show(rt, ask(rt, f"feedback {' '.join(words)}"))


@cli.command("survey", context_settings=_WORDS)
@click.argument("words", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("--yes", is_flag=True, help="Queue a large run without asking to confirm.")
@pass_runtime
def survey_command(rt: Runtime, words: tuple[str, ...], yes: bool) -> None:
    """Queue NPS or CSAT surveys by DM: nps|csat CUSTOMER | SEGMENT | FILTERS; or `status`.

    The running bot sends them, in each customer's hours and language, skipping anyone asked
    or answering within the cooldown. A run of more than surveys.confirm_over customers
    needs --yes.
    """
    text = " ".join(words)
    if yes and words[0].lower() in ("nps", "csat") and words[-1].lower() != "confirm":
        text += " confirm"
    result = ask(rt, f"survey {text}")
    if isinstance(result, SurveyConfirmResult):
        raise Failure(
            f"this would ask {result.eligible:,} customers for their {result.kind.upper()}; "
            f"to queue them, add --yes: clmbot survey {text} --yes"
        )
    show(rt, result)


def _day_end(text: str, zone: Any) -> datetime:
    """`2026-11-30` → the end of that day in CLMBOT_TIMEZONE: "as of" a day includes it."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise Failure(f"{text!r} is not a date; use YYYY-MM-DD, e.g. 2026-11-30") from None
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)


@cli.command("risk")
@click.option("--as-of", "as_of", metavar="YYYY-MM-DD", help="Score as of the end of this day.")
@click.option(
    "--format", "output", type=click.Choice(["table", "csv"]), default="table", show_default=True
)
@pass_runtime
def risk_command(rt: Runtime, as_of: str | None, output: str) -> None:
    """The churn risk (0-100) of everyone who was a customer on that day, highest first,
    from data up to that day only; csv: external_id,risk,reasons (reasons separated by ;)."""
    from clmbot.risk.score import score_all

    settings = rt.settings
    at = _day_end(as_of, settings.timezone) if as_of else now()
    with rt.ready_engine().connect() as conn:
        scored = score_all(conn, at, config=settings.risk, lifecycle=settings.lifecycle)
    if output == "csv":
        out = csv.writer(sys.stdout, lineterminator="\n")
        out.writerow(["external_id", "risk", "reasons"])
        for r in scored:
            out.writerow([files.neutralise(r.external_id), r.risk, "; ".join(r.reasons)])
        return
    click.echo(
        f"Churn risk as of {at.astimezone(settings.timezone):%Y-%m-%d %H:%M %Z}: "
        f"{len(scored):,} customers, {sum(r.risk >= settings.risk.threshold for r in scored):,} "
        f"at or above {settings.risk.threshold}"
    )
    for r in scored:
        why = "; ".join(r.reasons) or "—"
        click.echo(f"{r.risk:>4}  {r.external_id:<14} {r.name[:30]:<30}  {why}")


@cli.group()
def alerts() -> None:
    """The daily churn-risk pass."""


@alerts.command("run")
@click.option("--as-of", "as_of", metavar="YYYY-MM-DD", help="The pass of this day (its end).")
@click.option("--dry-run", is_flag=True, help="Score and show, store nothing.")
@pass_runtime
def alerts_run_command(rt: Runtime, as_of: str | None, dry_run: bool) -> None:
    """Score everyone and store the day's pass (once a day: a day already run is left as
    it is), as the daily job does; /clm at-risk and risk>70 read the latest pass."""
    from clmbot.risk.score import score_all

    settings = rt.settings
    at = _day_end(as_of, settings.timezone) if as_of else now()
    day = date.fromisoformat(as_of) if as_of else at.astimezone(settings.timezone).date()
    threshold = settings.risk.threshold
    engine = rt.ready_engine()
    if dry_run:
        with engine.connect() as conn:
            top = score_all(conn, at, config=settings.risk, lifecycle=settings.lifecycle)
        scored, at_risk = len(top), sum(r.risk >= threshold for r in top)
        click.echo(f"Dry run for {day}: nothing stored.")
    else:
        from clmbot.slack.app import make_client
        from clmbot.slack.digest import run_day

        # A past day filled in by hand is stored, not posted: the channel reads today's news.
        today = now().astimezone(settings.timezone).date()
        post = bool(settings.slack_bot_token and settings.routes) and day >= today
        report = run_day(
            engine,
            make_client(settings) if post else None,
            settings,
            day=day,
            as_of=at,
            now=now(),
            by=f"cli:{getpass.getuser()}",
        )
        if not report.ran:
            raise Failure(
                f"the pass of {day} was run already (or is running); /clm at-risk shows it",
                EXIT_REJECTED,
            )
        top, scored, at_risk = report.top, report.scored, report.at_risk
        click.echo(f"The pass of {day} is stored.")
        if report.pruned is not None and report.pruned.passes:
            click.echo(
                f"Deleted the customers' scores of {report.pruned.passes:,} older "
                f"pass{'es' if report.pruned.passes > 1 else ''} ({report.pruned.rows:,} rows; "
                f"[risk] keep_scores_days = {settings.risk.keep_scores_days})."
            )
        for route, raised in report.posted.items():
            click.echo(f"Digest for route {route}: {raised:,} customers raised.")
        for problem in report.problems:
            click.echo(f"clmbot: {problem}", err=True)
        if not post and day < today:
            click.echo("No digest posted: a past day is stored, not posted.")
        elif not post:
            click.echo(
                "No digest posted: set SLACK_BOT_TOKEN and CLMBOT_ALERT_CHANNEL (or "
                "[[alerts.routes]]) to post one."
            )
    click.echo(f"{scored:,} customers scored, {at_risk:,} at risk {threshold} or more.")
    for r in top[:10]:
        if r.risk >= threshold:
            click.echo(f"{r.risk:>4}  {r.external_id:<14} {'; '.join(r.reasons) or '—'}")


@cli.command("at-risk", context_settings=_WORDS)
@click.argument("words", nargs=-1, type=click.UNPROCESSED)
@pass_runtime
def at_risk_command(rt: Runtime, words: tuple[str, ...]) -> None:
    """The customers at risk in the latest stored pass, highest first, ten a page, the same
    words as /clm at-risk: [SEGMENT | FILTERS] [page N]."""
    show(rt, ask(rt, f"at-risk {' '.join(words)}"))


@cli.command("backtest")
@click.option("--from", "start", metavar="YYYY-MM-DD", required=True, help="First as-of day.")
@click.option("--to", "end", metavar="YYYY-MM-DD", required=True, help="Last as-of day.")
@click.option("--every", default="30d", show_default=True, help="Between as-of days: 7d, 30d, …")
@click.option(
    "--horizon", default=None, help="Inactive within this after each day (default: [risk])."
)
@pass_runtime
def backtest_command(rt: Runtime, start: str, end: str, every: str, horizon: str | None) -> None:
    """Replay the risk rules over past days: how many each day would have flagged, how many
    of those then went inactive within the horizon, precision, recall and ROC AUC."""
    from dataclasses import replace as changed

    from clmbot.periods import parse_duration
    from clmbot.risk.backtest import backtest

    settings = rt.settings
    try:
        step = parse_duration(every)
        config = (
            changed(settings.risk, horizon=parse_duration(horizon)) if horizon else settings.risk
        )
    except (ValueError, PeriodError) as exc:
        raise Failure(f"{exc}; use a length such as 7d, 30d or 12w") from None
    first, last = _day_end(start, settings.timezone), _day_end(end, settings.timezone)
    if last < first or step <= timedelta(0):
        raise Failure("--to must not be before --from, and --every must be a positive length")
    dates = []
    at = first
    while at <= last and len(dates) < 500:
        dates.append(at)
        at += step
    with rt.ready_engine().connect() as conn:
        lines = backtest(conn, dates, config=config, lifecycle=settings.lifecycle)
    days_ = config.horizon.days
    click.echo(
        f"Backtest: risk >= {config.threshold} flagged; inactive = no purchase (no activity "
        f"for those who never bought) within {days_} days"
    )
    click.echo(
        f"{'as of':<12}{'scored':>8}{'flagged':>9}{'inactive':>10}{'of flagged':>12}"
        f"{'precision':>11}{'recall':>8}{'ROC AUC':>9}"
    )
    for line in lines:
        click.echo(
            f"{line.as_of.astimezone(settings.timezone) - timedelta(days=1):%Y-%m-%d}  "
            f"{line.scored:>8,}{line.flagged:>9,}{line.inactive:>10,}{line.flagged_inactive:>12,}"
            f"{plain.percent(line.precision):>11}{plain.percent(line.recall):>8}"
            f"{'—' if line.auc is None else f'{line.auc:.3f}':>9}"
        )
    if lines and lines[-1].as_of + config.horizon > now():
        click.echo("(the last days' horizon has not ended: their outcomes are not all known)")


@cli.command("audit")
@since_option("30 days")
@click.option("--limit", type=click.IntRange(1, 100_000), default=200, show_default=True)
@pass_runtime
def audit_command(rt: Runtime, since_text: str | None, limit: int) -> None:
    """Every change made from Slack or the command line: who, what, when, from where."""
    settings, at = rt.settings, now()
    since = parse_since(since_text or "30d", at, settings.timezone)
    with session_scope(rt.ready_engine()) as session:
        entries = audit.entries(session, since=since, until=at, limit=limit)
    show(rt, AuditResult(entries, since, at, limit))


@cli.command("sample")
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--seed", type=int, default=7, show_default=True, help="Another seed, another business."
)
@click.option("--customers", type=click.IntRange(1, 100_000), default=120, show_default=True)
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="The day the sample ends on (default: today).",
)
def sample_command(folder: Path, seed: int, customers: int, today: datetime | None) -> None:
    """Write a sample business to FOLDER as CSV files, its dates counted back from today.

    customers.csv, stages.csv, events.csv and feedback.csv: import them in that order.
    """
    day: date = today.date() if today else now().date()
    business = generate(day, seed=seed, customers=customers)
    try:
        written = business.write(folder)
    except OSError as exc:
        raise Failure(f"cannot write the sample to {folder}: {exc.strerror or exc}") from None
    for path in written:
        click.echo(str(path))


@cli.command("forget", context_settings=_WORDS)
@click.argument("ref", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("--yes", is_flag=True, help="Forget without asking: it cannot be undone.")
@pass_runtime
def forget_command(rt: Runtime, ref: tuple[str, ...], yes: bool) -> None:
    """Erase a customer's personal data (REF: external id, e-mail or name): name, e-mail,
    Slack id, tags, attributes, comments and survey replies. Their scores, events and stage
    history stay, anonymous. Recorded in the audit log without the erased values."""
    words = ["forget", *ref] + (["confirm"] if yes and ref[-1].lower() != "confirm" else [])
    result = ask(rt, words)
    if isinstance(result, ForgetConfirmResult):
        c = result.customer
        raise Failure(
            f"this would erase the personal data of {c.name} ({c.external_id}) for good; "
            f"to go ahead: clmbot forget {c.external_id} --yes"
        )
    show(rt, result)


@cli.command("demo")
@click.option(
    "--script",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Run the lines of FILE (- for stdin) instead of a prompt: as typed, one per line.",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Another seed, another shop.")
@click.option(
    "--db",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Keep the database in this new file, to explore later with the real commands.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Keep the charts and exports in this folder (default: removed with the demo).",
)
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="The day the sample ends on (default: today); with --seed, the same demo again.",
)
def demo_command(
    script: Path | None, seed: int, db: Path | None, out: Path | None, today: datetime | None
) -> None:
    """The whole bot in this terminal, without Slack: a sample shop of 500 customers, /clm
    commands, customers answering surveys (:dm), buttons (:click) and a clock you move
    (:advance 1d runs the morning digest). Nothing needs configuring; nothing is left behind.
    """
    from clmbot.demo.console import ScriptError
    from clmbot.demo.play import DemoRefused, play

    try:
        play(today=today.date() if today else None, seed=seed, script=script, db=db, out=out)
    except (DemoRefused, ScriptError) as exc:
        raise Failure(str(exc), EXIT_USAGE) from None


@cli.command("run")
@click.option(
    "--http",
    "http_mode",
    is_flag=True,
    help="HTTP mode (POST /slack/events) even when SLACK_APP_TOKEN is set.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="HTTP mode port (default: PORT, else 3000; 0 picks a free one).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="HTTP mode: processes sharing the port (one per core answers the most).",
)
@click.option("--serve-only", "serve_only", is_flag=True, hidden=True)
@pass_runtime
def run_command(
    rt: Runtime, http_mode: bool, port: int | None, workers: int, serve_only: bool
) -> None:
    """The bot: Socket Mode when SLACK_APP_TOKEN is set, else HTTP mode."""
    from clmbot.slack.runner import StartError, run_bot

    settings = rt.settings
    http = http_mode or not settings.slack_app_token
    if workers > 1 and not http:
        raise Failure("--workers is for HTTP mode: add --http (Socket Mode is one connection)")
    try:
        code = run_bot(
            settings,
            http=http,
            port=port,
            announce=None if serve_only else (lambda line: click.echo(line, err=True)),
            workers=workers,
            serve_only=serve_only,
        )
    except StartError as exc:
        raise Failure(str(exc)) from None
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="clmbot")


if __name__ == "__main__":
    main()
