"""A Slack stand-in for the tests: the Web API and response URLs on 127.0.0.1 (a free port),
recording every call with its body, answering the methods clmbot uses, and failing on demand
(429 with Retry-After, or 5xx; before doing the work, or after it, as a Slack that posted and
then lost its answer); plus requests signed exactly as Slack signs them."""

from __future__ import annotations

import json
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from slack_sdk.signature import SignatureVerifier

SECRET = "8f742231b10e8888abcd991112228a5a"  # 32 hex characters, like a real one
TEAM = "T0TEAM"
BOT_USER = "U0CLMBOT"


class _Server(ThreadingHTTPServer):
    """Room for a burst: the standard backlog of 5 makes the 6th connection at once wait a
    second for its SYN to be retried, which a load benchmark would count against the bot."""

    request_queue_size = 1024
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up before its answer was written (a sender killed on purpose,
        a request that timed out) is the test's doing, not the stand-in's error: the call is
        recorded already. Anything else is printed, as the standard server does."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


@dataclass
class Call:
    method: str  # a Web API method, or "response_url"
    body: dict[str, Any]
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    at: float = 0.0  # time.monotonic() when it arrived


class FakeSlack:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.users: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, list[str]] = {}
        self.ws_url: str | None = None
        self.auth: dict[str, Any] = {
            "ok": True,
            "team_id": TEAM,
            "team": "Acme Inc",
            "user": "clmbot",
            "user_id": BOT_USER,
            "bot_id": "B0CLMBOT",
            "url": "https://acme.slack.com/",
        }
        # Files uploaded (files_upload_v2's second step), by file id: the bytes as sent.
        self.uploads: dict[str, bytes] = {}
        # Channels the bot is not in: uploading there fails as Slack fails it.
        self.not_in: set[str] = set()
        # Messages posted, by channel, oldest first: what conversations.history answers.
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self._ts = 0
        self._failures: dict[str, list[tuple[int, str | None, bool] | None]] = {}
        # Methods that answer `{"ok": false, "error": …}` (HTTP 200), as Slack refuses.
        self.refusals: dict[str, str] = {}
        self._refuse_next: dict[str, list[str]] = {}
        self._delays: dict[str, float] = {}
        self._cond = threading.Condition()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                fake._handle(self)

            def do_POST(self) -> None:
                fake._handle(self)

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    # --- set-up ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"http://127.0.0.1:{self.port}/response/{name}"

    def add_user(self, user_id: str, *, team_id: str = TEAM, **flags: Any) -> None:
        self.users[user_id] = {"id": user_id, "team_id": team_id, "name": user_id.lower(), **flags}

    def fail(
        self,
        method: str,
        status: int,
        *,
        retry_after: int | None = None,
        times: int = 1,
        done: bool = False,
        after: int = 0,
    ) -> None:
        """The next `times` calls of `method` answer `status` (429 with Retry-After, 500,
        503…). `done`: the call did its work first (a message posted), and only the answer
        failed, as when Slack times out after posting. `method` "response_url" fails the
        response URLs, "upload" the file bytes' upload URL. `after`: that many calls succeed
        first."""
        with self._cond:
            queue = self._failures.setdefault(method, [])
            queue.extend([None] * after)
            queue.extend(
                [(status, None if retry_after is None else str(retry_after), done)] * times
            )

    def refuse_next(self, method: str, error: str) -> None:
        """The next call of `method` is refused with `error` (HTTP 200, ok false)."""
        with self._cond:
            self._refuse_next.setdefault(method, []).append(error)

    def delay(self, method: str, seconds: float) -> None:
        self._delays[method] = seconds

    # --- reading what happened --------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        with self._cond:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, method: str, count: int = 1, timeout: float = 10) -> list[Call]:
        """Bolt answers after the ack, on another thread: wait until it has."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len([c for c in self.calls if c.method == method]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [c.method for c in self.calls]
                    raise AssertionError(f"no {count}x {method} within {timeout}s; saw {seen}")
                self._cond.wait(left)
            return [c for c in self.calls if c.method == method]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- serving ----------------------------------------------------------------------

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        parsed = urllib.parse.urlparse(req.path)
        length = int(req.headers.get("Content-Length") or 0)
        data = req.rfile.read(length) if length else b""
        if parsed.path.startswith("/upload/"):  # the file's bytes, not a form
            with self._cond:
                failures = self._failures.get("upload")
                failure = failures.pop(0) if failures else None
                self.calls.append(Call("upload", {}, parsed.path, {}, time.monotonic()))
                self._cond.notify_all()
            if failure is not None and not failure[2]:
                self._send(req, failure[0], {"ok": False}, {})
                return
            with self._cond:
                self.uploads[parsed.path.removeprefix("/upload/")] = data
                self._cond.notify_all()
            self._send(req, 200, {"ok": True}, {})
            return
        raw = data.decode()
        body: dict[str, Any] = dict(urllib.parse.parse_qsl(parsed.query))
        if raw:
            if (req.headers.get("Content-Type") or "").startswith("application/json"):
                body.update(json.loads(raw))
            else:
                body.update(urllib.parse.parse_qsl(raw))
        if parsed.path.startswith("/response/"):
            method = "response_url"
        else:
            method = parsed.path.removeprefix("/api/")
        with self._cond:
            failures = self._failures.get(method)
            failure = failures.pop(0) if failures else None
            self.calls.append(
                Call(method, body, parsed.path, dict(req.headers.items()), time.monotonic())
            )
            self._cond.notify_all()
        # Done on arrival (a message posted is in the channel), answered late.
        answer = self._answer(method, body) if failure is None or failure[2] else None
        time.sleep(self._delays.get(method, 0))
        if failure is not None:
            status, retry_after, _ = failure
            payload = {"ok": False, "error": "ratelimited" if status == 429 else "fatal_error"}
            self._send(req, status, payload, {"Retry-After": retry_after} if retry_after else {})
            return
        assert answer is not None
        self._send(req, 200, answer, {})

    def _answer(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._cond:
            once = self._refuse_next.get(method)
            refused = once.pop(0) if once else None
        if refused is not None:
            return {"ok": False, "error": refused}
        if method in self.refusals:
            return {"ok": False, "error": self.refusals[method]}
        if method == "auth.test":
            return self.auth
        if method == "users.info":
            person = self.users.get(body.get("user", ""))
            return (
                {"ok": True, "user": person} if person else {"ok": False, "error": "user_not_found"}
            )
        if method == "usergroups.users.list":
            return {"ok": True, "users": self.groups.get(body.get("usergroup", ""), [])}
        if method == "apps.connections.open":
            return {"ok": True, "url": self.ws_url}
        if method == "chat.postMessage":
            if str(body.get("channel", ""))[:1] in ("U", "W"):  # to a user: their DM with us
                body = {**body, "channel": "D" + str(body["channel"]).lstrip("UW")}
            with self._cond:
                self._ts += 1
                ts = f"{int(time.time())}.{self._ts:06d}"
                stored = {"ts": ts, "text": body.get("text"), "blocks": body.get("blocks")}
                if body.get("thread_ts"):
                    stored["thread_ts"] = body["thread_ts"]
                if body.get("metadata"):
                    meta = body["metadata"]
                    stored["metadata"] = json.loads(meta) if isinstance(meta, str) else meta
                self.messages.setdefault(str(body.get("channel")), []).append(stored)
            return {"ok": True, "channel": body.get("channel"), "ts": ts}
        if method == "chat.update":
            with self._cond:
                for msg in self.messages.get(str(body.get("channel")), []):
                    if msg["ts"] == body.get("ts"):
                        msg.update(text=body.get("text"), blocks=body.get("blocks"))
                        return {"ok": True, "channel": body.get("channel"), "ts": msg["ts"]}
            return {"ok": False, "error": "message_not_found"}
        if method == "conversations.history":
            with_meta = str(body.get("include_all_metadata", "")).lower() in ("1", "true")
            with self._cond:
                found = [
                    dict(m)
                    for m in reversed(self.messages.get(body.get("channel", ""), []))
                    if m.get("thread_ts", m["ts"]) == m["ts"]  # a thread's replies are not here
                ]
            if not with_meta:
                for m in found:
                    m.pop("metadata", None)
            return {"ok": True, "messages": found[: int(body.get("limit") or 100)]}
        if method == "conversations.replies":
            with_meta = str(body.get("include_all_metadata", "")).lower() in ("1", "true")
            parent = body.get("ts")
            with self._cond:
                found = [
                    dict(m)
                    for m in self.messages.get(body.get("channel", ""), [])
                    if m["ts"] == parent or m.get("thread_ts") == parent
                ]
            if not found:
                return {"ok": False, "error": "thread_not_found"}
            if not with_meta:
                for m in found:
                    m.pop("metadata", None)
            return {"ok": True, "messages": found[: int(body.get("limit") or 1000)]}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": "D" + str(body.get("users", "")).lstrip("UW")}}
        if method == "files.getUploadURLExternal":
            file_id = f"F{len(self.calls):06d}"
            upload_url = f"http://127.0.0.1:{self.port}/upload/{file_id}"
            return {"ok": True, "file_id": file_id, "upload_url": upload_url}
        if method == "files.completeUploadExternal":
            if body.get("channel_id") in self.not_in:
                return {"ok": False, "error": "not_in_channel"}
            files = json.loads(body["files"]) if isinstance(body.get("files"), str) else []
            return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]}
        return {"ok": True}

    @staticmethod
    def _send(
        req: BaseHTTPRequestHandler, status: int, payload: dict[str, Any], headers: dict[str, str]
    ) -> None:
        data = json.dumps(payload).encode()
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            req.send_header(key, value)
        req.end_headers()
        req.wfile.write(data)


# --- requests as Slack sends them ---------------------------------------------------------


def signed_headers(
    body: str, *, content_type: str, secret: str = SECRET, timestamp: int | None = None
) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": SignatureVerifier(secret).generate_signature(timestamp=ts, body=body),
    }


def slash_command_body(
    text: str,
    *,
    response_url: str,
    user: str = "U0MEMBER",
    team: str = TEAM,
    channel: str = "C0GENERAL",
) -> str:
    return urllib.parse.urlencode(
        {
            "token": "legacy",
            "team_id": team,
            "team_domain": "acme",
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/clm",
            "text": text,
            "api_app_id": "A0CLMBOT",
            "response_url": response_url,
            "trigger_id": "1.2.3",
        }
    )


def event_body(event: dict[str, Any], *, event_id: str, team: str = TEAM) -> str:
    return json.dumps(
        {
            "token": "legacy",
            "team_id": team,
            "api_app_id": "A0CLMBOT",
            "type": "event_callback",
            "event": event,
            "event_id": event_id,
            "event_time": int(time.time()),
            "authorizations": [{"team_id": team, "user_id": BOT_USER, "is_bot": True}],
        }
    )


def block_actions_body(
    action: dict[str, Any],
    *,
    response_url: str,
    user: str = "U0MEMBER",
    team: str = TEAM,
    channel: str = "C0GENERAL",
    message_ts: str = "1.1",
    ephemeral: bool = True,
) -> str:
    """An interaction payload, form-encoded as Slack posts it (`payload=<json>`)."""
    payload = {
        "type": "block_actions",
        "team": {"id": team, "domain": "acme"},
        "user": {"id": user, "username": user.lower(), "team_id": team},
        "api_app_id": "A0CLMBOT",
        "token": "legacy",
        "trigger_id": "1.2.3",
        "channel": {"id": channel, "name": "general"},
        "response_url": response_url,
        "container": {"type": "message", "message_ts": message_ts, "is_ephemeral": ephemeral},
        "actions": [{"block_id": "open_profiles", "action_ts": f"{time.time():.6f}", **action}],
    }
    return urllib.parse.urlencode({"payload": json.dumps(payload)})


@dataclass
class Reply:
    status: int
    body: str


def post(url: str, body: str, headers: dict[str, str]) -> Reply:
    req = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return Reply(resp.status, resp.read().decode())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, exc.read().decode())


def get(url: str) -> Reply:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return Reply(resp.status, resp.read().decode())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, exc.read().decode())
