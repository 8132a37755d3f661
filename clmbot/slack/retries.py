"""How clmbot rides out Slack's bad moments: every Web API client and every response URL
retries a lost connection, a 429 (after its Retry-After) and a 5xx, with exponential backoff
and jitter; the retries sleep in the calling thread, a worker's, never one that acks.

A retried send is idempotent for most methods (views.publish, chat.update, a look-up), and
near enough for an ephemeral answer to one person (at worst, the same answer twice, and
Slack keeps no ephemeral message to look for). A post that stays is not: Slack may have
posted it before it answered 5xx or the connection dropped. Those posts (the digest, a
survey, its reminder, the team's answer posts, the bot's answers in a DM) use `once_client`
(429 retried only, since a 429 posted nothing) and look for their message before posting
again (`clmbot.slack.posted_once`, `clmbot.slack.survey_sender`).
"""

from __future__ import annotations

from typing import Any

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.webhook import WebhookClient

# 0.5 s, 1 s (each plus up to 1 s of jitter): a hiccup of a few seconds passes unseen, and
# a request Slack will not take does not keep a worker for long.
BACKOFF = BackoffRetryIntervalCalculator(backoff_factor=0.5)
RATE_LIMIT_RETRIES = 3
SERVER_ERROR_RETRIES = 2
CONNECTION_RETRIES = 2
# slack_sdk's own ServerErrorRetryHandler knows 500 and 503 only; a load balancer in front of
# Slack answers 502 and 504 too.
SERVER_ERRORS = frozenset({500, 502, 503, 504})


class ServerErrorRetries(RetryHandler):
    """Retries Slack's 5xx answers."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and response.status_code in SERVER_ERRORS


def handlers(*, server_errors: bool = True, connection_errors: bool = True) -> list[RetryHandler]:
    """The retries: a 429 always; a 5xx and a lost connection unless the send must not be
    repeated blindly."""
    out: list[RetryHandler] = [RateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES)]
    if connection_errors:
        out.append(
            ConnectionErrorRetryHandler(
                max_retry_count=CONNECTION_RETRIES, interval_calculator=BACKOFF
            )
        )
    if server_errors:
        out.append(
            ServerErrorRetries(max_retry_count=SERVER_ERROR_RETRIES, interval_calculator=BACKOFF)
        )
    return out


def web_client(token: str | None, base_url: str | None = None) -> WebClient:
    kwargs: dict[str, Any] = {"token": token, "retry_handlers": handlers()}
    if base_url:
        kwargs["base_url"] = base_url
    return WebClient(**kwargs)


def once_client(
    client: WebClient,
    *,
    max_timeout: int | None = None,
    rate_limit: RetryHandler | None = None,
) -> WebClient:
    """The same client for sends that must not be repeated blindly: a 429 is retried (nothing
    was posted), a 5xx or a lost connection is left to the caller, who looks first.
    `rate_limit` replaces the standard 429 handling; `max_timeout` caps each request."""
    if not isinstance(client, WebClient):
        return client  # a stand-in (the demo's workspace), which has no retries to drop
    timeout = client.timeout if max_timeout is None else min(client.timeout, max_timeout)
    return WebClient(
        token=client.token,
        base_url=client.base_url,
        timeout=timeout,
        retry_handlers=[rate_limit]
        if rate_limit is not None
        else handlers(server_errors=False, connection_errors=False),
    )


def webhook(url: str) -> WebhookClient:
    """A response URL's client. Bolt's `respond` builds one with slack_sdk's defaults, which
    retry a lost connection only: a 429 or a 5xx there lost the answer."""
    return WebhookClient(url=url, retry_handlers=handlers())
