"""Sending webhooks (spec §11): from the outbox, signed following the Standard Webhooks
specification, at least once, in order per person, retried with back-off for up to 3 days.

:func:`deliver_due` is one pass, written as a plain function for the job workers (issue 14 wires it to
the job queue; :class:`DeliveryLoop` runs it in-process for ``entrasync serve`` and the tests):

1. queue the events written since each active endpoint's cursor (the feed is the outbox, so a refresh
   never waits for webhooks);
2. claim due deliveries, at most one per (endpoint, person): the head of that person's chain, so
   person P's second event waits until the first is delivered or given up, while everyone else's
   flow on;
3. send them, concurrently, with NO transaction open (HTTP never runs inside one);
4. settle: one log row per attempt; a 2xx is delivered, anything else is retried later
   (domain.webhook_retry) or, 3 days after the first attempt, given up; an endpoint with no success
   for 3 days is disabled and the organisation's admins are notified.

A worker that dies between sending and settling leaves its claim to expire: the delivery is sent
again (at least once; receivers dedupe on ``webhook-id``, which is the event's stable id).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from standardwebhooks.webhooks import Webhook

from entrasync.adapters.db.audit_repo import AuditEntry
from entrasync.adapters.db.webhooks_repo import Claimed, Outcome
from entrasync.domain.states import EndpointStatus, EventType
from entrasync.domain.webhook_retry import DISABLE_AFTER, next_attempt
from entrasync.errors import EntrasyncError
from entrasync.services import events, notifications
from entrasync.services.context import Actor, AppContext
from entrasync.services.webhook_targets import TargetRefusedError, check

log = logging.getLogger(__name__)
BATCH = 200  # deliveries claimed per pass
QUEUE_BATCH = 5000  # events queued per endpoint per transaction
CLAIM_LEASE = timedelta(minutes=2)  # a claim outlives the send (timeouts included); then it is free again
WORKERS = 8
USER_AGENT = "entrasync-webhooks/1 (Standard Webhooks)"
_SYSTEM = Actor(label="webhooks")


@dataclass
class DeliveryCounts:
    queued: int = 0
    attempted: int = 0
    delivered: int = 0
    failed: int = 0  # attempts that failed and will be tried again
    given_up: int = 0
    disabled: int = 0  # endpoints disabled after 3 days of failures

    def public(self) -> dict[str, int]:
        return asdict(self)


def queue_new(ctx: AppContext, now: datetime) -> int:
    """Queue a delivery per endpoint for each event written since its cursor (of the types it wants)."""
    with ctx.read() as uow:
        endpoints = uow.webhooks.active()
    total = 0
    for endpoint_id, org_id, types, cursor in endpoints:
        while True:
            with ctx.write() as uow:
                found = uow.events.for_webhooks(org_id, after_seq=cursor, limit=QUEUE_BATCH)
                if not found:
                    break
                wanted = [e for e in found if not types or EventType(e[1]).webhook_type in types]
                if not uow.webhooks.queue(endpoint_id, org_id, cursor, found[-1][0], wanted, now):
                    break  # another worker queued them
                total += len(wanted)
            cursor = found[-1][0]
            if len(found) < QUEUE_BATCH:
                break
    return total


def payload(row: dict[str, Any]) -> bytes:
    """The body of an event's webhook: the Standard Webhooks shape ``{type, timestamp, data}``, with the
    feed's event as ``data``; the same bytes on every retry."""
    ev = events.public(row)
    return orjson.dumps({"type": ev["type"], "timestamp": ev["occurred_at"], "data": ev})


def _send(client: httpx.Client, url: str, signer: Webhook, msg_id: str, body: bytes) -> tuple[int | None, str | None]:
    sent_at = datetime.now(UTC)  # the real clock: receivers refuse timestamps more than 5 minutes off
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signer.sign(msg_id, sent_at, body.decode()),
    }
    try:
        response = client.post(url, content=body, headers=headers)
    except httpx.TimeoutException:
        return None, "The endpoint did not answer in time."
    except httpx.HTTPError as exc:
        return None, f"The request failed: {type(exc).__name__}: {exc}"[:500]
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"The endpoint answered HTTP {response.status_code}: {response.text[:200]}"


def _attempt_all(
    ctx: AppContext, claimed: list[Claimed], now: datetime, client: httpx.Client, workers: int,
    draw: Callable[[], float],
) -> list[Outcome]:  # fmt: skip
    by_org: dict[int, list[int]] = {}
    for c in claimed:
        by_org.setdefault(c.org_id, []).append(c.event_seq)
    with ctx.read() as uow:
        rows = {(org, seq): row for org, seqs in by_org.items() for seq, row in uow.events.by_seqs(org, seqs).items()}
    refused: dict[str, str | None] = {}
    signers: dict[int, Webhook | str] = {}
    for c in claimed:
        if c.url not in refused:
            try:
                check(c.url, allow_private=ctx.config.webhook_allow_private)
                refused[c.url] = None
            except (TargetRefusedError, EntrasyncError) as exc:
                refused[c.url] = str(exc)
        if c.endpoint_id not in signers:
            try:
                signers[c.endpoint_id] = Webhook(ctx.box.open(c.secret_enc))
            except EntrasyncError as exc:
                signers[c.endpoint_id] = exc.message

    def one(c: Claimed) -> Outcome:
        started = time.monotonic()
        signer = signers[c.endpoint_id]
        code: int | None
        if refused[c.url] is not None:
            code, error = None, refused[c.url]
        elif isinstance(signer, str):
            code, error = None, signer
        else:
            row = rows[(c.org_id, c.event_seq)]
            code, error = _send(client, c.url, signer, events.event_id(c.org_id, c.event_seq), payload(row))
        ms = int((time.monotonic() - started) * 1000)
        if error is None:
            return Outcome(c.id, c.endpoint_id, now, True, code, None, ms, None)
        retry = next_attempt(c.first_attempt_at or now, now, c.attempts + 1, draw())
        return Outcome(c.id, c.endpoint_id, now, False, code, error, ms, retry, given_up=retry is None)

    if workers <= 1 or len(claimed) == 1:
        return [one(c) for c in claimed]
    with ThreadPoolExecutor(max_workers=min(workers, len(claimed))) as pool:
        return list(pool.map(one, claimed))


def _disable_failing(ctx: AppContext, now: datetime) -> int:
    """Disable endpoints with no success for 3 days, and tell the organisation's admins (§11)."""
    with ctx.write() as uow:
        failing = uow.webhooks.failing_for(now - DISABLE_AFTER)
        for endpoint_id, org_id, url in failing:
            reason = "No delivery succeeded for 3 days, so entrasync stopped sending to it."
            uow.webhooks.set_status(org_id, endpoint_id, EndpointStatus.DISABLED, reason, now)
            entry = AuditEntry("webhook", "disable", None, "status", EndpointStatus.ACTIVE.value, reason)
            uow.audit.write(org_id, _SYSTEM, now, [entry])
            notifications.notify_admins(
                uow, org_id, now, "Webhook endpoint disabled",
                f"{url} failed every delivery for 3 days and was disabled; its deliveries wait. Fix the receiver, "
                "then enable the endpoint again under Integrations → Webhooks.",
            )  # fmt: skip
    return len(failing)


def client_for(ctx: AppContext, workers: int = WORKERS) -> httpx.Client:
    """No redirects (a 3xx is a failure: a redirect could point anywhere), no proxy variables."""
    limits = httpx.Limits(max_connections=workers * 2, max_keepalive_connections=workers * 2)
    return httpx.Client(timeout=ctx.config.webhook_timeout, follow_redirects=False, trust_env=False, limits=limits)


def deliver_due(
    ctx: AppContext, *, now: datetime | None = None, limit: int = BATCH, client: httpx.Client | None = None,
    workers: int = WORKERS, draw: Callable[[], float] = random.random,
) -> DeliveryCounts:  # fmt: skip
    """One delivery pass (what a job runs): queue new events, send what is due, settle, disable
    endpoints failing for 3 days. ``now`` is the scheduling clock (tests move it); signatures always
    carry the real time."""
    now = now or ctx.now()
    counts = DeliveryCounts(queued=queue_new(ctx, now))
    with ctx.write() as uow:
        claimed = uow.webhooks.claim(now, limit=limit, lease=CLAIM_LEASE)
    if claimed:
        own = client is None
        http = client or client_for(ctx, workers)
        try:
            outcomes = _attempt_all(ctx, claimed, now, http, workers, draw)
        finally:
            if own:
                http.close()
        with ctx.write() as uow:
            uow.webhooks.settle(outcomes)
        counts.attempted = len(outcomes)
        counts.delivered = sum(1 for o in outcomes if o.ok)
        counts.given_up = sum(1 for o in outcomes if o.given_up)
        counts.failed = counts.attempted - counts.delivered - counts.given_up
    counts.disabled = _disable_failing(ctx, now)
    return counts


class DeliveryLoop:
    """Runs :func:`deliver_due` in a thread until stopped: ``entrasync serve`` on SQLite and the tests.
    It passes again at once while there is work, and sleeps ``interval`` seconds when there is none."""

    def __init__(self, ctx: AppContext, *, interval: float = 1.0, workers: int = WORKERS) -> None:
        self.ctx, self.interval, self.workers = ctx, interval, workers
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> DeliveryLoop:
        self._thread = threading.Thread(target=self._run, name="webhook-deliveries", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        with client_for(self.ctx, self.workers) as http:
            while not self._stop.is_set():
                try:
                    counts = deliver_due(self.ctx, client=http, workers=self.workers)
                    busy = counts.attempted or counts.queued
                except Exception:
                    log.exception("webhook delivery pass failed; trying again shortly")
                    busy = 0
                if not busy:
                    self._stop.wait(self.interval)
