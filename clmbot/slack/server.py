"""HTTP mode: `POST /slack/events` for Slack, `GET /healthz` for the load balancer, served by
cheroot (CherryPy's production WSGI server: threaded, pure Python, and it stops gracefully,
letting requests in flight finish).

Every request to `/slack/events` passes the door here before Bolt sees it: a body over
1 MB is refused before it is read, the signature and its timestamp are checked, and a
signed request seen before (a replay: the same bytes sent again within the five minutes a
timestamp is good for) is refused. Nothing of a refused request is logged but why and from
where: not its body, its signature, or the response URL inside it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cheroot import wsgi
from slack_bolt import App
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse
from sqlalchemy import Engine, delete, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateIndex, CreateTable

from clmbot.store.db import SQLITE_BUSY_TIMEOUT_MS, create_private, make_engine
from clmbot.store.models import SeenRequest

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
SHUTDOWN_GRACE_SECONDS = 30
MAX_BODY_BYTES = 1_048_576
# Slack refuses a timestamp older than five minutes; a replay must come within them.
FRESH_FOR = timedelta(minutes=5)
# Connections waiting for a worker thread: a burst of slash commands arrives at once.
LISTEN_BACKLOG = 1024
WORKER_THREADS = 32
log = logging.getLogger("clmbot.http")
_SEEN = SeenRequest.__table__
_QUICK_MS = 50  # how long a replay check waits for SQLite's write lock
# How long a replay check waits for PostgreSQL, and for how long after it did not answer the
# check leaves it alone.
DB_WAIT_SECONDS = 1.0
# How often the records older than ten minutes are deleted: a few at a time, since the other
# process's checks wait for the delete (a minute's, 12,000 rows at 200 a second, outlasted
# their 50 ms about once in two minutes).
PRUNE_EVERY = timedelta(seconds=5)
# On SQLite, the requests taken are kept in the database's file name with this added.
REPLAY_SUFFIX = "-replay"
# Requests a process remembers on its own (five minutes at 200 a second: 10 MB at most).
MEMORY_MOST = 60_000
DOWN_FOR = timedelta(seconds=10)
# A client that sends its body slowly holds a worker: not for longer than this.
READ_TIMEOUT_SECONDS = 5


def database_answers(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means: not healthy
        log.warning("health check: the database does not answer (%s)", type(exc).__name__)
        return False
    return True


class ReplayGuard:
    """Remembers the signed requests taken in the last five minutes, in the database, so a
    replay is refused by whichever copy of the bot it reaches. When the database does not
    answer, this process remembers on its own until it does.

    On SQLite they are kept in a file of their own beside the database (`<file>-replay`),
    which the bot's processes on that file share: SQLite has one writer per file, and in the
    database itself each acknowledgement waited for the audit log's writes, stage moves and
    imports, 50 ms at most, and then fell back to this process's memory, where a replay sent
    to another process is not caught (5-7 times a run under bench_load's 200 commands a
    second; for the whole of an import). In a file that only these checks write, they wait
    only for each other.

    The check comes before the acknowledgement, which Slack wants within 3 seconds. A
    PostgreSQL server that drops packets instead of refusing would hold it for the whole
    connect timeout (5 s): the check waits DB_WAIT_SECONDS at most, then this process's
    memory stands in, and the database is left alone for DOWN_FOR before being asked again
    (a replay sent to another copy meanwhile is not caught, and the log says the check ran
    without the database).
    """

    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self._engine, self._own_engine = _replay_store(engine)
        self._clock = clock
        self._lock = threading.Lock()
        self._memory: OrderedDict[str, datetime] = OrderedDict()  # the oldest first
        self._pruned = datetime.min.replace(tzinfo=UTC)
        self._warned = datetime.min.replace(tzinfo=UTC)
        self._sqlite_writer = threading.Lock()
        self._down_until = datetime.min.replace(tzinfo=UTC)
        # A few threads for the database's part of the check: one that hangs on a silent
        # server is waited for no longer than DB_WAIT_SECONDS.
        self._workers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="replay-check")
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        self._insert = dialect.insert(_SEEN).on_conflict_do_nothing(
            index_elements=["signature_hash"]
        )

    def first_time(self, signature: str) -> bool:
        key = hashlib.sha256(signature.encode()).hexdigest()
        now = self._clock()
        with self._lock:
            if key in self._memory:
                return False
            self._memory[key] = now
            # The oldest first, a few at a time: the dictionary used to be rebuilt whole on
            # every request once it held 10,000 (100 seconds at 100 a second), each time
            # longer, under the lock every acknowledgement takes: bench_load's stall.
            memory = self._memory
            while memory and (
                len(memory) > MEMORY_MOST or now - next(iter(memory.values())) >= FRESH_FOR
            ):
                memory.popitem(last=False)
        if now < self._down_until:
            return True  # the database did not answer a moment ago: memory holds meanwhile
        try:
            if self._engine.dialect.name == "sqlite":
                # One writer at a time here (SQLite has one anyway), so that the requests of
                # a burst do not fail each other's short waits below.
                with self._sqlite_writer:
                    return self._record(key, now)
            return self._workers.submit(self._record, key, now).result(timeout=DB_WAIT_SECONDS)
        except Exception as exc:  # the database is down or busy: this process's memory holds
            if isinstance(exc, FutureTimeout):
                self._down_until = now + DOWN_FOR
            if now - self._warned > timedelta(minutes=1):
                self._warned = now
                log.warning("replay check without the database (%s)", type(exc).__name__)
            return True

    def close(self) -> None:
        """Let go of the engine of its own (a file of its own on SQLite, a pool of its own
        on PostgreSQL): its connections are this guard's."""
        if self._own_engine:
            self._engine.dispose()

    def _record(self, key: str, now: datetime) -> bool:
        if self._engine.dialect.name == "postgresql":  # always through a pool of its own
            return self._record_postgresql(key, now)
        with self._engine.begin() as conn:
            quick = conn.dialect.name == "sqlite" and not self._own_engine
            if quick:
                # An import holds SQLite's write lock for minutes: an acknowledgement must
                # not wait for it. This process's memory stands in meanwhile.
                conn.exec_driver_sql(f"PRAGMA busy_timeout = {_QUICK_MS}")
            try:
                result = conn.execute(
                    self._insert.values(signature_hash=key, received_at=now),
                    execution_options={"preserve_rowcount": True},
                )
                if now - self._pruned > PRUNE_EVERY:
                    self._pruned = now
                    conn.execute(delete(_SEEN).where(_SEEN.c.received_at < now - 2 * FRESH_FOR))
            finally:
                if quick:  # the connection goes back to the pool: as the others wait
                    conn.exec_driver_sql(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        return result.rowcount == 1

    def _record_postgresql(self, key: str, now: datetime) -> bool:
        """One statement straight to the driver, on a connection of the guard's own pool in
        autocommit: every request to the bot passes here, and the same check through a
        transaction (checkout ping, BEGIN, the statement built, COMMIT) took four times the
        interpreter time, which bounds how many commands a process takes a second. Without
        a ping at checkout, the connections that died with a server restart fail once: the
        pool is emptied and the check made again on a new one (all within DB_WAIT_SECONDS).
        A connection lost after its INSERT committed leaves the request there: the retry
        finds it, and takes it as its own when it holds this very time (a replay taken
        elsewhere holds another). The prune comes after, on its own: the request is taken
        whether or not it works."""
        try:
            taken = self._send(_PG_TAKE, (key, now)) == 1
        except Exception:
            self._engine.dispose()  # every idle connection may have died with this one
            taken = self._send(_PG_TAKE, (key, now)) == 1 or self._send(_PG_MINE, (key, now)) == 1
        if now - self._pruned > PRUNE_EVERY:
            self._pruned = now
            try:
                self._send(_PG_PRUNE, (now - 2 * FRESH_FOR,))
            except Exception as exc:  # the next prune will do; the request stands
                log.info("the requests taken were not pruned (%s)", type(exc).__name__)
        return taken

    def _send(self, statement: str, values: tuple[Any, ...]) -> int:
        """The rows `statement` changed (or found); a connection that failed never goes back
        to the pool."""
        fairy = self._engine.raw_connection()
        try:
            cursor = fairy.cursor()
            cursor.execute(statement, values)
            count = int(cursor.rowcount)
            cursor.close()
            return count
        except Exception:
            fairy.invalidate()
            raise
        finally:
            fairy.close()


# The guard's statements on PostgreSQL, sent as they are (see `_record_postgresql`).
_PG_TAKE = (
    f"INSERT INTO {_SEEN.name} (signature_hash, received_at) VALUES (%s, %s) "
    "ON CONFLICT (signature_hash) DO NOTHING"
)
_PG_PRUNE = f"DELETE FROM {_SEEN.name} WHERE received_at < %s"
_PG_MINE = f"SELECT 1 FROM {_SEEN.name} WHERE signature_hash = %s AND received_at = %s"


def _no_wait_for_the_disk(dbapi_connection: Any, _record: Any) -> None:
    """A request taken is worth remembering for five minutes, not through a crash: a
    commit here does not wait for the WAL to reach the disk (a crash may forget the last
    fraction of a second's requests, and a replay of those within the five minutes would
    then be taken; nothing else is written on these connections)."""
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")


def _replay_store(engine: Engine) -> tuple[Engine, bool]:
    """Where the requests taken are kept, and whether through an engine of their own: on
    PostgreSQL, its table through a small pool of its own in autocommit (see
    `_record_postgresql`); for a SQLite file, a file of their own beside it (created
    private, never through a link planted at its name), whose connections wait only
    `_QUICK_MS` for another process's write, with the main file's table only when that
    cannot be had."""
    if engine.dialect.name == "postgresql":
        own_pool = make_engine(
            engine.url.render_as_string(hide_password=False),
            pool_size=4,
            max_overflow=4,
            pool_pre_ping=False,
            isolation_level="AUTOCOMMIT",
        )
        event.listen(own_pool, "connect", _no_wait_for_the_disk)
        return own_pool, True
    database = engine.url.database
    if engine.dialect.name != "sqlite" or database in (None, "", ":memory:"):
        return engine, False
    path = Path(f"{database}{REPLAY_SUFFIX}")
    if not create_private(path):
        log.warning(
            "%s is not a file clmbot made (a link?): requests are kept in the database", path
        )
        return engine, False
    # Each statement its own transaction (autocommit): SQLite takes the file's write lock
    # and lets it go within one call into C, where the interpreter's lock is free, rather
    # than holding it across a BEGIN, an INSERT and a COMMIT, three returns to Python, each
    # a wait for the interpreter among dozens of threads, with the other process's checks
    # waiting meanwhile.
    own = make_engine(
        f"sqlite:///{path}", pool_size=4, max_overflow=8, isolation_level="AUTOCOMMIT"
    )

    @event.listens_for(own, "connect")
    def _quick(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA busy_timeout = {_QUICK_MS}")
        # Nothing here outlives ten minutes: a power cut may lose the last records, not the
        # file, and no checkpoint waits for the disk while the checks queue.
        dbapi_connection.execute("PRAGMA synchronous = OFF")

    try:
        with own.begin() as conn:  # several processes may start at once: IF NOT EXISTS
            conn.execute(CreateTable(_SEEN, if_not_exists=True))
            for index in _SEEN.indexes:
                conn.execute(CreateIndex(index, if_not_exists=True))
    except Exception as exc:
        own.dispose()
        log.warning(
            "%s cannot be used (%s): requests are kept in the database", path, type(exc).__name__
        )
        return engine, False
    return own, True


def _refuse(
    start_response: Callable[..., Any], status: str, why: str, *, close: bool = False
) -> list[bytes]:
    body = json.dumps({"ok": False, "error": why}).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    if close:
        headers.append(("Connection", "close"))
    start_response(status, headers)
    return [body]


class SlackDoor:
    """The WSGI application of HTTP mode."""

    def __init__(
        self,
        bolt_app: App,
        engine: Engine,
        signing_secret: str,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._bolt = bolt_app
        self._engine = engine
        self._secret = signing_secret.encode()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._replays = ReplayGuard(engine, self._clock)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        if path == "/healthz" and method in ("GET", "HEAD"):
            ok = database_answers(self._engine)
            body = json.dumps({"ok": ok, "database": "ok" if ok else "unavailable"}).encode()
            start_response(
                "200 OK" if ok else "503 Service Unavailable",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
            )
            return [body]
        if path != "/slack/events":
            return _refuse(start_response, "404 Not Found", "not found")
        if method != "POST":
            return _refuse(start_response, "405 Method Not Allowed", "POST only")
        return self._slack(environ, start_response)

    def close(self) -> None:
        self._replays.close()

    def _slack(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        where = environ.get("REMOTE_ADDR", "?")
        raw_length = environ.get("CONTENT_LENGTH") or ""
        if not _ascii_number(raw_length, 12):
            log.warning("refused a request from %s: no Content-Length", where)
            return _refuse(start_response, "411 Length Required", "length required", close=True)
        length = int(raw_length)
        if length > MAX_BODY_BYTES:
            log.warning("refused a request from %s: a body of %d bytes is too large", where, length)
            return _refuse(start_response, "413 Content Too Large", "too large", close=True)
        body = environ["wsgi.input"].read(length)
        timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", "")
        signature = environ.get("HTTP_X_SLACK_SIGNATURE", "")
        problem = self._signature_problem(body, timestamp, signature)
        if problem:
            log.warning("refused a request from %s: %s", where, problem)
            return _refuse(start_response, "401 Unauthorized", "invalid request")
        try:
            decoded = body.decode("utf-8")
        except UnicodeDecodeError:
            log.warning("refused a request from %s: the body is not UTF-8", where)
            return _refuse(start_response, "400 Bad Request", "not utf-8")
        if not self._replays.first_time(_replay_key(signature, environ, decoded)):
            log.warning("refused a request from %s: a replay of a request already taken", where)
            return _refuse(start_response, "401 Unauthorized", "invalid request")
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        headers["content-type"] = environ.get("CONTENT_TYPE", "")
        try:
            request = BoltRequest(
                body=decoded, query=environ.get("QUERY_STRING", ""), headers=headers
            )
        except Exception:  # signed, yet not the JSON or form its content type says
            log.warning("refused a request from %s: a body Bolt cannot read", where)
            return _refuse(start_response, "400 Bad Request", "malformed")
        try:
            response: BoltResponse = self._bolt.dispatch(request)
        except Exception:
            error_id = uuid.uuid4().hex[:10]
            log.exception("error %s: handling a request from %s", error_id, where)
            return _refuse(start_response, "500 Internal Server Error", f"error {error_id}")
        payload = (response.body or "").encode("utf-8")
        out_headers = [
            (name, value) for name, values in response.headers.items() for value in values
        ]
        out_headers = [h for h in out_headers if h[0].lower() != "content-length"]
        out_headers.append(("Content-Length", str(len(payload))))
        start_response(
            f"{response.status} {_REASONS.get(response.status, '')}".strip(), out_headers
        )
        return [payload]

    def _signature_problem(self, body: bytes, timestamp: str, signature: str) -> str | None:
        if not timestamp or not signature:
            return "not signed"
        if not _ascii_number(timestamp, 12):
            return "a timestamp that is not a number"
        if abs(self._clock().timestamp() - int(timestamp)) > FRESH_FOR.total_seconds():
            return "a timestamp older than five minutes (or a clock far off)"
        # Slack signs the bytes it sends: HMAC-SHA256 of "v0:<timestamp>:<body>" with the
        # signing secret (slack_sdk's verifier decodes the body first, and fails on bad bytes).
        digest = hmac.new(self._secret, b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
        if not _same("v0=" + digest.hexdigest(), signature):
            return "a signature that does not match (a wrong SLACK_SIGNING_SECRET?)"
        return None


def _replay_key(signature: str, environ: dict[str, Any], body: str) -> str:
    """What makes a request the same request. Slack re-sends an event it thinks was missed
    with the same body, perhaps within the same second (the same signature), and a retry
    number. Neither that number nor the content type is signed, so the number counts only
    for a body that is an Events API callback with an event id: what such a request does is
    done once per event id whatever its number (see `Bot.dm_reply`). Nothing else is ever
    retried by Slack."""
    retry = environ.get("HTTP_X_SLACK_RETRY_NUM", "")
    if not (_ascii_number(retry, 1) and 0 < int(retry) <= 5):
        return signature
    if environ.get("CONTENT_TYPE", "").split(";")[0].strip() != "application/json":
        return signature
    try:
        payload = json.loads(body)
    except ValueError:
        return signature
    if (
        isinstance(payload, dict)
        and payload.get("type") == "event_callback"
        and isinstance(payload.get("event_id"), str)
    ):
        return f"{signature}|{retry}"
    return signature


def _ascii_number(text: str, digits: int) -> bool:
    """Digits 0-9 only: `str.isdigit` also takes ², which `int` then refuses."""
    return 0 < len(text) <= digits and text.isascii() and text.isdigit()


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    500: "Internal Server Error",
}


def wsgi_app(
    bolt_app: App,
    engine: Engine,
    signing_secret: str,
    clock: Callable[[], datetime] | None = None,
) -> WsgiApp:
    return SlackDoor(bolt_app, engine, signing_secret, clock=clock)


class HttpServer:
    def __init__(
        self,
        app: WsgiApp,
        *,
        host: str = "0.0.0.0",
        port: int = 3000,
        tick: float = 0.5,
        reuse_port: bool = False,
    ) -> None:
        """`tick`: how often the server looks up from its sockets, which bounds how long
        a stop takes to be noticed. `reuse_port`: the port is shared with the bot's other
        processes (`clmbot.slack.workers`)."""
        self._server = wsgi.Server(
            (host, port),
            app,
            numthreads=WORKER_THREADS,
            request_queue_size=LISTEN_BACKLOG,
            reuse_port=reuse_port,
        )
        self._app = app
        self._server.shutdown_timeout = SHUTDOWN_GRACE_SECONDS
        self._server.timeout = READ_TIMEOUT_SECONDS
        self._server.expiration_interval = tick
        # Larger bodies are refused by the application, which answers 413 before reading;
        # this is the server's own stop for bodies that lie about their length.
        self._server.max_request_body_size = MAX_BODY_BYTES

    def start(self) -> int:
        """Bind the socket; returns the port (the one the system chose, for port 0)."""
        self._server.prepare()
        return int(self._server.bind_addr[1])

    def serve(self) -> None:
        """Serve until `stop` is called from another thread."""
        self._server.serve()

    def stop(self) -> None:
        """Stop accepting, let the requests in flight finish (30 s at most), close."""
        self._server.stop()
        close = getattr(self._app, "close", None)
        if callable(close):
            close()
