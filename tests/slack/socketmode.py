"""A Socket Mode stand-in: the WebSocket that `apps.connections.open` points the bot to."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from websockets.sync.server import ServerConnection, serve


class SocketModeStandIn:
    def __init__(self, envelopes: list[dict[str, Any]]) -> None:
        self.envelopes = envelopes
        self.received: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._server = serve(self._session, "127.0.0.1", 0)
        self.port = self._server.socket.getsockname()[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/link/?ticket=test"

    def _session(self, ws: ServerConnection) -> None:
        ws.send(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": 1,
                    "connection_info": {"app_id": "A0CLMBOT"},
                    "debug_info": {"host": "standin", "approximate_connection_time": 3600},
                }
            )
        )
        for envelope in self.envelopes:
            ws.send(json.dumps(envelope))
        for message in ws:
            with self._cond:
                self.received.append(json.loads(message))
                self._cond.notify_all()

    def wait_for_ack(self, envelope_id: str, timeout: float = 15) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for message in self.received:
                    if message.get("envelope_id") == envelope_id:
                        return message
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no ack for {envelope_id}; got {self.received}")
                self._cond.wait(left)

    def close(self) -> None:
        self._server.shutdown()
