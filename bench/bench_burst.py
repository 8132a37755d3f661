"""A burst of slash commands at once, against the bot in HTTP mode.

Slack gives a slash command 3 seconds for its acknowledgement, and a team's commands come
when people type them: after a meeting, or from a script, many arrive together. This starts
the real HTTP server with the real Bolt app (on a SQLite file, against a local Slack
stand-in), sends N signed `/clm help` requests at the same moment, and prints how many were
acknowledged, how many failed (a reset connection, a status other than 200), and the
slowest acknowledgement. As a baseline it sends the same burst, in the same process, to the
same server class serving a WSGI app that answers 200 at once: the ratio is what checking,
replay protection and Bolt add to the server's own cost.

    python bench/bench_burst.py [--requests 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the stand-in in tests/

from clmbot.config import Settings
from clmbot.slack.app import build_app
from clmbot.slack.server import HttpServer, wsgi_app
from clmbot.store.db import make_engine
from clmbot.store.migrate import upgrade
from tests.fakeslack import (
    SECRET,
    FakeSlack,
    post,
    signed_headers,
    slash_command_body,
)


def serve(app: Callable[..., Any]) -> tuple[HttpServer, str]:
    server = HttpServer(app, host="127.0.0.1", port=0, tick=0.05)
    port = server.start()
    threading.Thread(target=server.serve, daemon=True).start()
    return server, f"http://127.0.0.1:{port}"


def burst(url: str, slack: FakeSlack, n: int, tag: str) -> tuple[int, int, float, float]:
    """N signed commands at once: (acknowledged, failed, slowest ack s, median ack s)."""
    bodies = [
        slash_command_body(f"help {tag}{i}", response_url=slack.response_url(f"{tag}{i}"))
        for i in range(n)
    ]
    signed = [signed_headers(b, content_type="application/x-www-form-urlencoded") for b in bodies]
    start = threading.Event()

    def one(i: int) -> tuple[bool, float]:
        start.wait()
        began = time.perf_counter()
        try:
            ok = post(url + "/slack/events", bodies[i], signed[i]).status == 200
        except OSError:
            ok = False
        return ok, time.perf_counter() - began

    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(one, i) for i in range(n)]
        time.sleep(0.2)  # every sender waiting at the line
        start.set()
        results = [f.result() for f in futures]
    times = [t for _, t in results]
    acked = sum(ok for ok, _ in results)
    return acked, n - acked, max(times), statistics.median(times)


def instant(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("200 OK", [("Content-Length", "0")])
    return [b""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    slack = FakeSlack()
    slack.add_user("U0MEMBER")
    folder = Path(tempfile.mkdtemp(prefix="clmbot-burst-"))
    atexit.register(shutil.rmtree, folder, True)  # gone at exit, however the run ends
    url = f"sqlite:///{folder / 'clmbot.db'}"
    engine = make_engine(url)
    upgrade(engine)
    settings = Settings(
        database_url=url,
        slack_bot_token="xoxb-bench",
        slack_signing_secret=SECRET,
        slack_api_url=slack.url,
    )
    listeners = ThreadPoolExecutor(max_workers=16)
    app, bot = build_app(settings, engine, executor=listeners)
    bot_server, bot_url = serve(wsgi_app(app, engine, SECRET))
    bare_server, bare_url = serve(instant)

    print(f"{args.requests} signed slash commands at once, {args.rounds} rounds")
    print(f"{'':<28}{'acked':>7}{'failed':>8}{'slowest':>10}{'median':>10}")
    worst_ratio = 0.0
    all_acked = True
    for r in range(args.rounds):
        b_acked, b_failed, b_slow, b_med = burst(bare_url, slack, args.requests, f"b{r}-")
        acked, failed, slow, med = burst(bot_url, slack, args.requests, f"c{r}-")
        all_acked = all_acked and acked == args.requests
        for label, row in (
            ("bare WSGI app", (b_acked, b_failed, b_slow, b_med)),
            ("clmbot", (acked, failed, slow, med)),
        ):
            line = f"{row[0]:>7}{row[1]:>8}{row[2]:>9.3f}s{row[3]:>9.3f}s"
            print(f"round {r + 1}: {label:<17}{line}")
        worst_ratio = max(worst_ratio, slow / b_slow if b_slow else float("inf"))
    answered = len(slack.wait_for("response_url", count=args.requests * args.rounds, timeout=120))
    print(f"answers through the response URL: {answered} of {args.requests * args.rounds}")
    print(f"slowest ack, clmbot / bare app: {worst_ratio:.1f}x (worst round)")
    print("every command acknowledged" if all_acked else "SOME COMMANDS WERE NOT ACKNOWLEDGED")
    bot_server.stop()
    bare_server.stop()
    listeners.shutdown(wait=True)
    bot.stop()
    slack.close()
    engine.dispose()
    sys.exit(0 if all_acked else 1)


if __name__ == "__main__":
    main()
