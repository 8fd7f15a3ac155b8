"""msal's ``http_client``: the identity platform through httpx, with the same retry rules as Graph.

msal calls the token endpoint and OIDC discovery through whatever ``http_client`` it is given. Its
default (``requests``) lets ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` override the CA setting
(PRODUCT.md Appendix B), never times out unless told, and does not retry: one 429 or 503 from the
sign-in service failed a refresh at once. This client keeps entrasync's CA bundle authoritative
(``trust_env=False``), applies ``ENTRASYNC_GRAPH_TIMEOUT`` to every request, and retries throttling
and transient answers honouring ``Retry-After`` within the Graph retry budget (adapters.graph.retry).
msal sees only the final answer, so its own 429 cache never replays a stale error.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from entrasync.adapters.graph import retry
from entrasync.adapters.graph.errors import GraphTransientError
from entrasync.adapters.graph.retry import RETRY_STATUSES, Retry, RetryBudget, make_ssl_context, parse_retry_after

log = logging.getLogger(__name__)

WHAT = "The Microsoft identity platform"
SETTING = "ENTRASYNC_LOGIN_URL"


def _form(data: Any) -> Any:
    """msal's form fields as httpx wants them: text (msal may give the signed client assertion as bytes,
    which ``requests`` sends as is and httpx would send as its ``repr``)."""
    if isinstance(data, Mapping):
        return {k: v.decode() if isinstance(v, bytes) else v for k, v in data.items()}
    return data


class IdentityHttp:
    """A ``requests``-like client for msal (``get``/``post`` returning responses with ``status_code``,
    ``text``, ``headers`` and ``raise_for_status``): httpx responses, read in full."""

    def __init__(
        self,
        *,
        ca_bundle: str | None,
        timeout: float,
        budget: RetryBudget,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._budget = budget
        self._sleep, self._clock, self._rng = sleep, clock, rng
        self.request_count = 0
        self._ca_bundle, self._timeout, self._transport = ca_bundle, timeout, transport
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None

    @property
    def _http(self) -> httpx.Client:
        """Built at the first request: a refresh whose token is kept (services.graph_tokens) never asks
        the identity platform, and need not build a TLS context from the CA bundle for it."""
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    verify=make_ssl_context(self._ca_bundle) if self._transport is None else True,
                    trust_env=False,
                    timeout=httpx.Timeout(self._timeout),
                    transport=self._transport,
                    headers={"User-Agent": "entrasync"},
                )
            return self._client

    def get(
        self, url: str, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None, **_: Any
    ) -> httpx.Response:
        return self._send("GET", url, params=params, headers=headers)

    def post(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        **_: Any,
    ) -> httpx.Response:
        return self._send("POST", url, params=params, data=_form(data), headers=headers)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        retry.check_url(url, SETTING)
        path = urlsplit(url).path

        def attempt() -> httpx.Response:
            self.request_count += 1
            try:
                response = self._http.request(method, url, **{k: v for k, v in kwargs.items() if v is not None})
            except httpx.TransportError as exc:
                failure = retry.transport_failure(exc, url, WHAT, SETTING)
                raise failure from None
            if response.status_code in RETRY_STATUSES:
                raise Retry(
                    f"HTTP {response.status_code}{' (throttled)' if response.status_code == 429 else ''}",
                    retry_after=parse_retry_after(response.headers.get("Retry-After")),
                    status=response.status_code,
                )
            return response

        def on_retry(n: int, exc: Retry, delay: float) -> None:
            log.warning("%s %s failed (%s); retry %d in %.2f s", method, path, exc.reason, n, delay)

        def exhausted(n: int, exc: Retry, over: str) -> Exception:
            return GraphTransientError(
                f"{WHAT} did not answer successfully after {n} attempt(s): {exc.reason}{over}. "
                "The sign-in service may be throttling or unavailable; the next refresh tries again.",
                status=exc.status,
            )

        return retry.run(
            attempt,
            budget=self._budget,
            what=WHAT,
            sleep=self._sleep,
            clock=self._clock,
            rng=self._rng,
            on_retry=on_retry,
            exhausted=exhausted,
        )
