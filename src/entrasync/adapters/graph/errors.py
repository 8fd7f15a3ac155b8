"""Errors the Graph adapter raises, sorted by what the caller should do about them.

- :class:`GraphTransientError`: Graph or the network failed and retrying later may work
  (throttling, 5xx, timeouts, dropped connections, garbled bodies) after our own bounded retries.
- :class:`GraphStopError`: retrying will not help until an admin fixes something
  (credentials, consent, a missing application permission). The message says what to fix.
- :class:`GraphBadRequestError`: Graph refused the request itself (400, 404, ...); ``code`` and
  ``message`` come from Graph's error envelope so the UI can show Graph's own words.
- :class:`DeltaTokenExpiredError`: the delta token is no longer accepted; do a full read.

Messages never contain tokens, secrets or Authorization headers: only status, Graph's error code and
message, and the request id (which Microsoft support asks for).
"""

from __future__ import annotations


class GraphError(Exception):
    """Base class of everything the Graph adapter raises."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id

    def __str__(self) -> str:
        return self.message


class GraphTransientError(GraphError):
    """Throttling / 5xx / timeouts / dropped connections / garbled bodies, retries exhausted."""


class GraphStopError(GraphError):
    """Authentication, consent or permission failure: stop the run and tell the admin what to fix."""


class GraphBadRequestError(GraphError):
    """Graph rejected the request (4xx other than auth). ``code``/``message`` are Graph's own."""

    status: int
    code: str
    message: str

    def __init__(self, status: int, code: str, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message, status=status, code=code, request_id=request_id)

    def __str__(self) -> str:
        return f"{self.message} ({self.code}, HTTP {self.status})"


class DeltaTokenExpiredError(GraphBadRequestError):
    """The delta token was refused (400 ``syncStateNotFound`` and friends, or 410 Gone).

    See https://learn.microsoft.com/graph/delta-query-overview ("Synchronization reset",
    "Token duration"): the client must restart with a full synchronization.
    """
