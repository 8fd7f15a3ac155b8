"""The one choke point for Microsoft Graph HTTP.

Everything entrasync sends to Graph goes through :class:`GraphClient`: one keep-alive
``httpx.Client`` (HTTP/1.1), bearer tokens from a token provider, retries with ``Retry-After``, paging
through ``@odata.nextLink`` and delta rounds. Bodies are parsed with orjson into plain dicts; model
objects are built by the reader, not here, so a 100,000-user read costs little more than the bytes.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import orjson

from entrasync.adapters.graph import retry
from entrasync.adapters.graph.auth import (
    PUBLIC_GRAPH_RESOURCE,
    PUBLIC_LOGIN_URL,
    MsalTokenProvider,
    TokenSource,
    TokenStore,
)
from entrasync.adapters.graph.budget import GraphBudget
from entrasync.adapters.graph.errors import (
    DeltaTokenExpiredError,
    GraphBadRequestError,
    GraphError,
    GraphStopError,
    GraphTransientError,
)
from entrasync.adapters.graph.retry import RETRY_STATUSES, Retry, RetryBudget, make_ssl_context, parse_retry_after
from entrasync.adapters.graph.wire import describe, encode_query, error_envelope, origin_of, path_of
from entrasync.domain.graph_budget import request_cost

log = logging.getLogger(__name__)
Decode = Callable[[bytes], dict[str, Any] | None]  # a page body -> the page, or None: parse it with orjson

# Error codes Graph uses when a delta/sync token can no longer be used; the client must resync.
# https://learn.microsoft.com/graph/delta-query-overview ("Token duration": "a 40X-series error with
# error codes such as syncStateNotFound") and https://learn.microsoft.com/graph/errors (code property).
DELTA_EXPIRED_CODES = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid"})

# Retried statuses (adapters.graph.retry): 429/503/504 are Graph's throttling / transient answers and
# may carry Retry-After (https://learn.microsoft.com/graph/throttling,
# https://learn.microsoft.com/graph/best-practices-concept "Handling expected errors"); other 5xx (but
# 501 Not Implemented) are retried too: every request here is an idempotent GET.

_MISSING_PERMISSION_HINT = (
    "Grant the app registration the Microsoft Graph application permissions User.Read.All and "
    "GroupMember.Read.All, with admin consent, then refresh again."
)


@dataclass(frozen=True, slots=True)
class GraphConfig:
    """Where Graph and the identity platform are, and how patient to be with them."""

    graph_url: str = PUBLIC_GRAPH_RESOURCE  # service root; the client appends /v1.0
    login_url: str = PUBLIC_LOGIN_URL
    tenant_id: str = ""
    client_id: str = ""
    client_credential: str = field(default="", repr=False)  # secret or certificate PEM
    ca_bundle: str | None = None
    timeout: float = 30.0
    max_retry_seconds: float = 120.0
    max_attempts: int = 10
    scope: str | None = None  # override the derived `.default` scope (rarely needed)

    @property
    def api_root(self) -> str:
        root = self.graph_url.rstrip("/")
        return root if root.endswith("/v1.0") else f"{root}/v1.0"


class GraphClient:
    """Synchronous Graph v1.0 client: GETs with retries, paging and delta rounds.

    ``request_count`` counts every HTTP attempt (retries included) so runs can report Graph cost.
    ``sleep``/``clock``/``rng`` are injectable so tests check the back-off without waiting.
    ``graph_budget`` (optional) is asked before each attempt and told of each 429: the throttling
    budgets the workers share (spec §10, services.graph_budget).
    """

    def __init__(
        self,
        config: GraphConfig,
        *,
        token_provider: TokenSource | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
        graph_budget: GraphBudget | None = None,
        token_store: TokenStore | None = None,
    ) -> None:
        self.config = config
        self._graph_budget = graph_budget
        retry.check_url(config.graph_url, "ENTRASYNC_GRAPH_URL")
        self.api_root = config.api_root
        self._budget = RetryBudget(config.max_attempts, config.max_retry_seconds)
        self._origin = origin_of(self.api_root)
        if token_provider is None:
            token_provider = MsalTokenProvider(
                login_url=config.login_url,
                tenant_id=config.tenant_id,
                client_id=config.client_id,
                client_credential=config.client_credential,
                graph_url=config.graph_url,
                ca_bundle=config.ca_bundle,
                timeout=config.timeout,
                scope=config.scope,
                budget=RetryBudget(config.max_attempts, config.max_retry_seconds),
                store=token_store,
            )
        self._token_provider = token_provider
        self._sleep = sleep
        self._clock = clock
        self._rng = rng
        self.request_count = 0
        self._pool: futures.ThreadPoolExecutor | None = None
        self._http = httpx.Client(
            verify=make_ssl_context(config.ca_bundle) if transport is None else True,
            trust_env=False,
            http2=False,
            timeout=httpx.Timeout(config.timeout),
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "entrasync"},
        )

    # -- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._http.close()
        closer = getattr(self._token_provider, "close", None)
        if callable(closer):
            closer()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- URLs ------------------------------------------------------------------------------------

    def url(self, path: str, params: Mapping[str, str | int | bool] | None = None) -> str:
        """Absolute URL for an API path (``/users``) plus encoded query options."""
        url = f"{self.api_root}/{path.lstrip('/')}"
        if params:
            url += ("&" if "?" in url else "?") + encode_query(params)
        return url

    def _resolve(self, url_or_path: str, params: Mapping[str, str | int | bool] | None) -> str:
        if url_or_path.startswith(("https://", "http://")):
            if params:
                raise ValueError("params are only allowed with a path; absolute URLs are used verbatim")
            self.check_origin(url_or_path)
            return url_or_path
        return self.url(url_or_path, params)

    def same_origin(self, url: str) -> bool:
        """Whether ``url`` is on the configured Graph service root (:meth:`check_origin`'s test)."""
        return origin_of(url) == self._origin

    def check_origin(self, url: str) -> None:
        """Never send the bearer token to a host other than the configured Graph service root.

        Default ports are implied, and the loopback names (localhost, 127.0.0.1, ::1) are one host, so a
        local Graph stand-in that writes its links with another loopback name is still followed.
        """
        if not self.same_origin(url):
            parts = urlsplit(url)
            raise GraphTransientError(
                f"Graph returned a link to an unexpected host ({parts.scheme}://{parts.netloc}); refusing to follow it."
            )

    # -- one request, with retries ---------------------------------------------------------------

    def get(
        self,
        url_or_path: str,
        params: Mapping[str, str | int | bool] | None = None,
        *,
        advanced: bool = False,
        require_value: bool = False,
    ) -> dict[str, Any]:
        """GET one resource or page and return its JSON object.

        ``advanced`` sends ``ConsistencyLevel: eventual`` (advanced queries,
        https://learn.microsoft.com/graph/aad-advanced-queries). ``require_value`` makes a 200 body
        without a ``value`` array a (retried) protocol error instead of an empty page.
        """
        url = self._resolve(url_or_path, params)
        headers = {"ConsistencyLevel": "eventual"} if advanced else {}
        return self._get_json(url, headers, require_value=require_value)

    def _drop_token(self) -> None:
        invalidate = getattr(self._token_provider, "invalidate", None)
        if callable(invalidate):
            invalidate()

    def _get_json(
        self, url: str, extra_headers: Mapping[str, str], *, require_value: bool, decode: Decode | None = None
    ) -> dict[str, Any]:
        reauthenticated = False

        def attempt() -> dict[str, Any]:
            nonlocal reauthenticated
            try:
                return self._attempt(url, extra_headers, require_value=require_value, decode=decode)
            except _Unauthorized as exc:
                if reauthenticated:
                    raise GraphStopError(
                        "Microsoft Graph rejected the access token"
                        f"{describe(exc.code, exc.message)}. Check the tenant id, the client id and "
                        "secret, and that the Graph and login URLs belong to the same cloud.",
                        status=401,
                        code=exc.code or None,
                        request_id=exc.request_id,
                    ) from None
                reauthenticated = True
                self._drop_token()
                log.info("Graph answered 401; acquiring a new token and retrying once")
                raise Retry("HTTP 401 (token refreshed)", retry_after=0.0, status=401, immediate=True) from None
            except GraphStopError as exc:
                if exc.status != 403 or reauthenticated:
                    raise
                # A token is reused while it lives (auth.PROCESS_TOKENS): one issued before the admin
                # granted a permission lacks it. Ask once with a new token before calling it missing.
                reauthenticated = True
                self._drop_token()
                log.info("Graph answered 403; acquiring a new token and retrying once")
                raise Retry("HTTP 403 (token refreshed)", retry_after=0.0, status=401, immediate=True) from None

        def on_retry(n: int, exc: Retry, delay: float) -> None:
            if exc.status != 401:
                log.warning("Graph GET %s failed (%s); retry %d in %.2f s", path_of(url), exc.reason, n, delay)

        return retry.run(
            attempt,
            budget=self._budget,
            what="Microsoft Graph",
            sleep=self._sleep,
            clock=self._clock,
            rng=self._rng,
            on_retry=on_retry,
        )

    def _attempt(
        self, url: str, extra_headers: Mapping[str, str], *, require_value: bool, decode: Decode | None
    ) -> dict[str, Any]:
        token = self._token_provider()
        client_request_id = str(uuid.uuid4())
        headers = {
            "Authorization": f"Bearer {token}",
            "client-request-id": client_request_id,
            "return-client-request-id": "true",
            **extra_headers,
        }
        if self._graph_budget is not None:
            parts = urlsplit(url)
            self._graph_budget.acquire(request_cost(parts.path, dict(parse_qsl(parts.query))))
        self.request_count += 1
        try:
            # Streamed and joined rather than ``.content``: httpx keeps ``.content`` on the response,
            # which sits in a reference cycle, so with the cyclic GC paused for a bulk read
            # (entrasync.runners.tuning) every page's body would stay in memory until the read ends.
            with self._http.stream("GET", url, headers=headers) as response:
                body = b"".join(response.iter_bytes())
        except httpx.TransportError as exc:  # timeouts, connect/read/write errors, dropped connections
            raise retry.transport_failure(exc, url, "Microsoft Graph", "ENTRASYNC_GRAPH_URL") from None

        status = response.status_code
        if 200 <= status < 300:
            if decode is not None and (decoded := decode(body)) is not None:
                return decoded
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError:
                raise Retry(f"truncated or invalid JSON body ({len(body)} bytes)", status=status) from None
            if not isinstance(data, dict):
                raise Retry("response body is not a JSON object", status=status)
            if require_value and not isinstance(data.get("value"), list):
                raise Retry("page without a 'value' array", status=status)
            return data

        code, message, request_id = error_envelope(body)
        request_id = request_id or response.headers.get("request-id")
        log.warning(
            "Graph GET %s -> HTTP %d %s (request-id %s, client-request-id %s)",
            path_of(url),
            status,
            code or "-",
            request_id or "-",
            client_request_id,
        )
        if status in RETRY_STATUSES:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if status == 429 and self._graph_budget is not None:
                self._graph_budget.throttled(retry_after)
            raise Retry(f"HTTP {status}{' ' + code if code else ''}", retry_after=retry_after, status=status)
        if status == 401:
            raise _Unauthorized(code, message, request_id)
        if status == 403:
            raise GraphStopError(
                f"Microsoft Graph refused access{describe(code, message)}. {_MISSING_PERMISSION_HINT}",
                status=403,
                code=code or None,
                request_id=request_id,
            )
        if status == 410 or code.lower() in DELTA_EXPIRED_CODES:
            # 410 Gone = "Synchronization reset": https://learn.microsoft.com/graph/delta-query-overview
            raise DeltaTokenExpiredError(
                status,
                code or "syncStateNotFound",
                message or "The delta token is no longer valid.",
                request_id=request_id,
            )
        raise GraphBadRequestError(
            status,
            code or f"HTTP{status}",
            message or response.reason_phrase or "Request failed",
            request_id=request_id,
        )

    # -- paging ----------------------------------------------------------------------------------

    def iter_pages(
        self,
        path: str,
        params: Mapping[str, str | int | bool] | None = None,
        *,
        advanced: bool = False,
        decode: Decode | None = None,
    ) -> Iterator[list[Any]]:
        """Yield each page's ``value`` until no ``@odata.nextLink`` is left.

        The nextLink is absolute and opaque; it is requested exactly as Graph wrote it
        (https://learn.microsoft.com/graph/paging). With ``advanced``, ``$count=true`` is added to the
        first request and ``ConsistencyLevel: eventual`` is sent on *every* page: the header is not part
        of the nextLink. ``decode`` is offered each body first (typed_pages; on the prefetch thread, where
        orjson would parse it): its page when it returns one, else orjson's list of dicts.
        """
        if advanced and not path.startswith(("https://", "http://")):
            params = {**(params or {})}
            params.setdefault("$count", "true")
        headers = {"ConsistencyLevel": "eventual"} if advanced else {}
        for page in self._pages(self._resolve(path, params), headers, self._next_link, decode):
            yield page["value"]

    def iter_delta_pages(self, url_or_path: str) -> Iterator[tuple[list[dict[str, Any]], str | None]]:
        """One delta round: yield ``(items, delta_link)`` per page; ``delta_link`` only on the last.

        Pages are chained by ``@odata.nextLink`` until a page carries ``@odata.deltaLink``
        (https://learn.microsoft.com/graph/delta-query-overview). Query options live inside the links.
        """
        for page in self._pages(self._resolve(url_or_path, None), {}, self._next_delta_link, None):
            next_link = page.get("@odata.nextLink")
            yield page["value"], None if isinstance(next_link, str) else page["@odata.deltaLink"]

    def _next_link(self, page: Mapping[str, Any]) -> str | None:
        next_link = page.get("@odata.nextLink")
        if next_link is not None and not isinstance(next_link, str):
            raise GraphTransientError("Graph returned a malformed @odata.nextLink")
        if next_link is not None:
            self.check_origin(next_link)
        return next_link

    def _next_delta_link(self, page: Mapping[str, Any]) -> str | None:
        next_link, delta_link = page.get("@odata.nextLink"), page.get("@odata.deltaLink")
        if isinstance(next_link, str):
            self.check_origin(next_link)
            return next_link
        if isinstance(delta_link, str):
            self.check_origin(delta_link)
            return None
        raise GraphTransientError("Graph ended a delta page with neither @odata.nextLink nor @odata.deltaLink")

    def _pages(
        self,
        url: str,
        headers: Mapping[str, str],
        follow: Callable[[Mapping[str, Any]], str | None],
        decode: Decode | None,
    ) -> Iterator[dict[str, Any]]:
        """Yield page after page (``follow`` checks a page's links and names the next URL, or None).

        While the caller maps one page, the next is already being fetched on a helper thread, so Graph's
        server time hides behind our own work (§9: the read within 1.5x of a bare loop). Still one
        request in flight at a time, in order, with the same retries; an error surfaces where the page
        would have. A caller that stops early waits for the request in flight, never leaves it running.
        """
        page = self._get_json(url, headers, require_value=True, decode=decode)
        while True:
            next_url = follow(page)
            pending = (
                self._prefetcher().submit(self._get_json, next_url, headers, require_value=True, decode=decode)
                if next_url
                else None
            )
            done = False
            try:
                yield page
                done = True
            finally:
                if pending is not None and not done:
                    pending.cancel()
                    futures.wait([pending])
            if pending is None:
                return
            page = pending.result()

    def _prefetcher(self) -> futures.ThreadPoolExecutor:
        if self._pool is None:
            self._pool = futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="graph-prefetch")
        return self._pool

    def delta(self, url_or_path: str) -> tuple[list[dict[str, Any]], str]:
        """A whole delta round: all changed items and the deltaLink for the next round."""
        items: list[dict[str, Any]] = []
        delta_link = ""
        for page, link in self.iter_delta_pages(url_or_path):
            items.extend(page)
            if link is not None:
                delta_link = link
        return items, delta_link


class _Unauthorized(GraphError):
    def __init__(self, code: str, message: str, request_id: str | None) -> None:
        super().__init__(message or "Unauthorized", status=401, code=code, request_id=request_id)
        self.code = code
        self.message = message


__all__ = [
    "DELTA_EXPIRED_CODES",
    "GraphClient",
    "GraphConfig",
    "encode_query",
    "make_ssl_context",
    "parse_retry_after",
]
