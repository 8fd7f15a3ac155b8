"""The retry rules every request to Graph and to the identity platform follows (§4.1, §4.8).

One policy for both doors: throttling (429) and transient answers (5xx but 501), timeouts and dropped
connections are retried, honouring ``Retry-After`` (https://learn.microsoft.com/graph/throttling),
with exponential back-off and jitter otherwise, within a bounded number of attempts and seconds.
What retrying cannot fix fails at once, saying what to fix: a malformed URL or an unsupported
scheme, a TLS certificate that is not trusted, a host name that does not resolve. A refused
connection (nothing listens on that port) gets two quick retries, for a proxy that is restarting.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar
from urllib.parse import urlsplit

import certifi
import httpx

from entrasync.adapters.graph.errors import GraphStopError, GraphTransientError

T = TypeVar("T")

# Retried statuses: Graph's and the identity platform's throttling / transient answers.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 509})
REFUSED_ATTEMPTS = 3  # a closed port: two quick retries, then "nothing answered"


@dataclass(frozen=True, slots=True)
class RetryBudget:
    """How patient to be: at most ``max_attempts`` attempts and ``max_seconds`` of waiting."""

    max_attempts: int = 10
    max_seconds: float = 120.0


class Retry(Exception):
    """This attempt failed in a way worth retrying (raised by an attempt, caught by :func:`run`)."""

    def __init__(
        self,
        reason: str,
        retry_after: float | None = None,
        status: int | None = None,
        *,
        limit: int | None = None,
        immediate: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.status = status
        self.limit = limit  # a lower attempt limit for this kind of failure (refused connections)
        self.immediate = immediate  # try again without waiting (a refreshed token after a 401)


def make_ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """TLS verification from entrasync's CA setting only (certifi when unset); env vars don't apply."""
    return ssl.create_default_context(cafile=ca_bundle or certifi.where())


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds (integer or fractional) or an
    HTTP-date (RFC 9110 §10.2.3). ``None`` when absent or unparseable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds or seconds == float("inf"):  # NaN / inf
        return None
    return max(0.0, seconds)


def backoff(attempt: int, rng: Callable[[], float]) -> float:
    """Exponential back-off with jitter: 0.5 s, 1 s, 2 s … capped at 30 s (times 0.5–1)."""
    base: float = min(30.0, 0.5 * (2.0 ** (attempt - 1)))
    return base * (0.5 + 0.5 * rng())


def run(
    attempt: Callable[[], T],
    *,
    budget: RetryBudget,
    what: str,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    rng: Callable[[], float],
    on_retry: Callable[[int, Retry, float], None] | None = None,
    exhausted: Callable[[int, Retry, str], Exception] | None = None,
) -> T:
    """Call ``attempt`` until it returns, retrying each :class:`Retry` it raises within ``budget``.

    ``what`` names the service in the final message ("Microsoft Graph", "the Microsoft identity
    platform"). ``exhausted`` may build the final error instead (it gets the attempts, the last
    failure and the over-budget note).
    """
    deadline = clock() + budget.max_seconds
    n = 0
    while True:
        n += 1
        try:
            return attempt()
        except Retry as exc:
            delay = exc.retry_after if exc.retry_after is not None else backoff(n, rng)
            remaining = deadline - clock()
            limit = min(budget.max_attempts, exc.limit or budget.max_attempts)
            if n >= limit or delay > remaining:
                over = f" (a further wait of {delay:.0f} s exceeds the retry budget)" if delay > remaining else ""
                if exhausted is not None:
                    raise exhausted(n, exc, over) from None
                raise GraphTransientError(
                    f"{what} did not answer successfully after {n} attempt(s): {exc.reason}{over}", status=exc.status
                ) from None
            if on_retry is not None:
                on_retry(n, exc, delay)
            if not exc.immediate:
                sleep(delay)


def _causes(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(out) < 10:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def transport_failure(exc: httpx.TransportError, url: str, what: str, setting: str) -> Exception:
    """Map an httpx transport error: a :class:`Retry` when retrying may help, else a stop error.

    ``setting`` names the configuration to fix (``ENTRASYNC_GRAPH_URL``, ``ENTRASYNC_LOGIN_URL``).
    """
    parts = urlsplit(url)
    where = f"{parts.scheme}://{parts.netloc}" if parts.netloc else url
    if isinstance(exc, httpx.TimeoutException):
        return Retry(f"timeout ({type(exc).__name__})")
    if isinstance(exc, httpx.UnsupportedProtocol):
        return GraphStopError(f"{where} is not a URL entrasync can call: {exc}. Check {setting}.")
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return GraphStopError(
                f"The TLS certificate of {where} is not trusted ({cause.verify_message or cause}). "
                "If a corporate proxy or a private CA signs it, point ENTRASYNC_CA_BUNDLE at its CA certificate; "
                f"else check {setting}."
            )
        if isinstance(cause, socket.gaierror):
            return GraphStopError(f"The host of {where} cannot be found ({cause.strerror or cause}). Check {setting}.")
        if isinstance(cause, ConnectionRefusedError):
            return Retry(f"nothing answered at {where} (connection refused); check {setting}", limit=REFUSED_ATTEMPTS)
    if isinstance(exc, httpx.ConnectError) and "refused" in str(exc).lower() and "[Errno" in str(exc):
        return Retry(f"nothing answered at {where} (connection refused); check {setting}", limit=REFUSED_ATTEMPTS)
    return Retry(f"connection error ({type(exc).__name__})")


def check_url(url: str, setting: str) -> None:
    """A URL entrasync can call at all: https with a host. Raises :class:`GraphStopError` otherwise."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise GraphStopError(f"{setting} is not a valid URL ({exc}): {url!r}.") from None
    if parts.scheme != "https" or not parts.hostname:
        # Bearer tokens and client secrets never travel in clear: Graph and the identity platform are HTTPS only.
        raise GraphStopError(f"{setting} must be an https:// URL such as https://graph.microsoft.com, not {url!r}.")


__all__ = [
    "RETRY_STATUSES",
    "Retry",
    "RetryBudget",
    "backoff",
    "check_url",
    "make_ssl_context",
    "parse_retry_after",
    "run",
    "transport_failure",
]
