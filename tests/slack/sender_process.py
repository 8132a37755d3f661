"""A survey sender in a process of its own, for the tests that kill one or run two:
`python -m tests.slack.sender_process DB_URL API_URL NOW [--go FILE] [--per-second N]`.

It waits for FILE to exist when given (so that two start together), runs the sender once at
NOW, and prints its report as JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from clmbot.config import Settings
from clmbot.slack.app import make_client
from clmbot.slack.survey_sender import SurveySender
from clmbot.store.db import make_engine
from clmbot.surveys.settings import SurveyConfig


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("db_url")
    parser.add_argument("api_url")
    parser.add_argument("now")
    parser.add_argument("--go")
    parser.add_argument("--per-second", type=float, default=5.0)
    args = parser.parse_args()
    settings = Settings(
        database_url=args.db_url,
        slack_bot_token="xoxb-test-token",
        slack_api_url=args.api_url,
        surveys=SurveyConfig(sends_per_second=args.per_second),
    )
    engine = make_engine(args.db_url, create=False)
    sender = SurveySender(engine, make_client(settings), settings)
    if args.go:
        while not Path(args.go).exists():
            time.sleep(0.01)
    report = sender.run_once(datetime.fromisoformat(args.now), budget=120)
    print(json.dumps({"worker": sender.worker, **asdict(report)}), flush=True)


if __name__ == "__main__":
    main()
