"""HTTP mode: `POST /slack/events` for Slack, `GET /healthz` for the load balancer, served by
cheroot (CherryPy's production WSGI server: threaded, pure Python, and it stops gracefully,
letting requests in flight finish)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from cheroot import wsgi
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from sqlalchemy import Engine, text

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
SHUTDOWN_GRACE_SECONDS = 30


def database_answers(engine: Engine) -> tuple[bool, str]:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means: not healthy; the reason goes to the probe
        return False, str(exc).strip().splitlines()[0][:200]
    return True, "ok"


def wsgi_app(bolt_app: App, engine: Engine) -> WsgiApp:
    slack = SlackRequestHandler(bolt_app, path="/slack/events")

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz" and environ["REQUEST_METHOD"] in ("GET", "HEAD"):
            ok, detail = database_answers(engine)
            body = json.dumps({"ok": ok, "database": detail}).encode()
            start_response(
                "200 OK" if ok else "503 Service Unavailable",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
            )
            return [body]
        return slack(environ, start_response)

    return app


class HttpServer:
    def __init__(
        self, app: WsgiApp, *, host: str = "0.0.0.0", port: int = 3000, tick: float = 0.5
    ) -> None:
        """`tick`: how often the server looks up from its sockets, which bounds how long
        a stop takes to be noticed."""
        self._server = wsgi.Server((host, port), app, numthreads=16)
        self._server.shutdown_timeout = SHUTDOWN_GRACE_SECONDS
        self._server.expiration_interval = tick

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
