"""What Bolt may write to the log: never a request's body, a response URL, a signature or a
token. Bolt puts parts of a request into some of its messages (an unhandled request, a
refused signature); those are cut down to what names the kind of request."""

from __future__ import annotations

import logging
import re

from clmbot.files import scrub_values

_BOLT_LOGGER = "clmbot.bolt"
# Bolt warns about a token it would not use whenever SLACK_BOT_TOKEN is in the environment
# and a client is given, which is always the case here: not something to fix, not news.
_UNUSED_TOKEN = "As you gave `client` as well, `token` will be unused."
_CARRIES_REQUEST = re.compile(
    r"(body|payload|request \(|response_url|signature|xox[a-z]-|xapp-)", re.IGNORECASE
)


class RedactRequests(logging.Filter):
    """Drops Bolt's note about the token; cuts any message that carries request data down
    to its first words."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("clmbot.") and not record.name.startswith(_BOLT_LOGGER):
            return True  # clmbot's own messages say what they mean to say
        message = record.getMessage()
        if message == _UNUSED_TOKEN:
            return False
        if _CARRIES_REQUEST.search(message):
            head = re.split(r"[({:]", message, maxsplit=1)[0].strip()
            record.msg = f"{head} (request details withheld from the log)"
            record.args = ()
        return True


def guard_handlers(handlers: list[logging.Handler]) -> None:
    """The same filter on the log's handlers, for every other library's messages."""
    for handler in handlers:
        if not any(isinstance(f, RedactRequests) for f in handler.filters):
            handler.addFilter(RedactRequests())


def quiet_bolt_logger() -> logging.Logger:
    logger = logging.getLogger(_BOLT_LOGGER)
    if not any(isinstance(f, RedactRequests) for f in logger.filters):
        logger.addFilter(RedactRequests())
    return logger


class ScrubbingFormatter(logging.Formatter):
    """Tracebacks without the values a database error carries (see `scrub_values`)."""

    def __init__(self, like: logging.Formatter | None) -> None:
        super().__init__(like._fmt if like else None, like.datefmt if like else None)

    def formatException(self, ei: object) -> str:
        return scrub_values(super().formatException(ei))  # type: ignore[arg-type]

    def formatMessage(self, record: logging.LogRecord) -> str:
        return scrub_values(super().formatMessage(record))
