"""Webhook endpoints, their outbox of deliveries and the delivery log (spec §11).

The change feed is the outbox: a refresh writes only its events. Deliveries are queued from the feed
afterwards (:meth:`WebhooksRepo.queue`, a compare-and-set on the endpoint's ``cursor_seq`` so two
workers never queue the same event twice), claimed for a while by the worker that sends them, and
settled with one log row per attempt. Only the *head* of each (endpoint, person) chain is ever due,
which is what keeps deliveries in order per person while other people's events flow past a failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from entrasync.adapters.db import tables as t
from entrasync.adapters.db.bulk import bulk_insert_rows, db_time
from entrasync.domain.states import DeliveryStatus, EndpointStatus

_PUBLIC = (
    "id",
    "org_id",
    "url",
    "description",
    "event_types",
    "status",
    "disabled_reason",
    "failing_since",
    "last_success_at",
    "created_at",
    "created_by",
    "disabled_at",
)
_QUEUE_COLUMNS = (
    "endpoint_id",
    "org_id",
    "event_seq",
    "person_id",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery a worker now sends: where to, with which secret, and which event."""

    id: int
    endpoint_id: int
    org_id: int
    person_id: int
    event_seq: int
    attempts: int
    first_attempt_at: datetime | None
    url: str
    secret_enc: bytes


@dataclass(frozen=True, slots=True)
class Outcome:
    """One attempt's result, to record."""

    delivery_id: int
    endpoint_id: int
    at: datetime
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: int
    next_attempt_at: datetime | None  # None: delivered, or given up
    given_up: bool = False


class WebhooksRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- endpoints -----------------------------------------------------------------------------------

    def create(
        self,
        org_id: int,
        *,
        url: str,
        description: str | None,
        event_types: list[str],
        secret_enc: bytes,
        cursor_seq: int,
        now: datetime,
        by: str,
    ) -> int:
        pk = self.conn.execute(
            sa.insert(t.webhook_endpoints).values(
                org_id=org_id,
                url=url,
                description=description,
                event_types=event_types,
                secret_enc=secret_enc,
                status=EndpointStatus.ACTIVE.value,
                cursor_seq=cursor_seq,
                created_at=now,
                created_by=by,
            )
        ).inserted_primary_key
        assert pk is not None
        return int(pk[0])

    def endpoints(self, org_id: int, *, after_id: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        w = t.webhook_endpoints
        q = sa.select(*(w.c[c] for c in _PUBLIC)).where(w.c.org_id == org_id, w.c.id > after_id)
        return [dict(r._mapping) for r in self.conn.execute(q.order_by(w.c.id).limit(limit))]

    def get(self, org_id: int, endpoint_id: int) -> dict[str, Any] | None:
        w = t.webhook_endpoints
        row = self.conn.execute(
            sa.select(*(w.c[c] for c in _PUBLIC)).where(w.c.org_id == org_id, w.c.id == endpoint_id)
        ).first()
        return dict(row._mapping) if row else None

    def set_status(
        self, org_id: int, endpoint_id: int, status: EndpointStatus, reason: str | None, now: datetime
    ) -> bool:
        w = t.webhook_endpoints
        values: dict[str, Any] = {"status": status.value, "disabled_reason": reason}
        if status is EndpointStatus.DISABLED:
            values["disabled_at"] = now
        else:
            values.update(disabled_at=None, failing_since=None)
        res = self.conn.execute(sa.update(w).where(w.c.org_id == org_id, w.c.id == endpoint_id).values(**values))
        return bool(res.rowcount)

    def active(self) -> list[tuple[int, int, list[str], int]]:
        """(id, org id, event types, cursor seq) of every active endpoint, in every organisation."""
        w = t.webhook_endpoints
        rows = self.conn.execute(
            sa.select(w.c.id, w.c.org_id, w.c.event_types, w.c.cursor_seq)
            .where(w.c.status == EndpointStatus.ACTIVE.value)
            .order_by(w.c.id)
        )
        return [(int(a), int(b), list(c or []), int(d)) for a, b, c, d in rows]

    def failing_for(self, since: datetime) -> list[tuple[int, int, str]]:
        """(id, org id, url) of active endpoints that have not succeeded since ``since``."""
        w = t.webhook_endpoints
        rows = self.conn.execute(
            sa.select(w.c.id, w.c.org_id, w.c.url).where(
                w.c.status == EndpointStatus.ACTIVE.value, w.c.failing_since.is_not(None), w.c.failing_since <= since
            )
        )
        return [(int(a), int(b), str(c)) for a, b, c in rows]

    # -- the outbox ----------------------------------------------------------------------------------

    def queue(
        self,
        endpoint_id: int,
        org_id: int,
        from_seq: int,
        to_seq: int,
        events: Sequence[tuple[int, str, int]],
        now: datetime,
    ) -> bool:
        """Queue deliveries of ``events`` (seq, type, person id) and move the endpoint's cursor from
        ``from_seq`` to ``to_seq``; False (nothing written) when another worker moved it first."""
        w = t.webhook_endpoints
        moved = self.conn.execute(
            sa.update(w).where(w.c.id == endpoint_id, w.c.cursor_seq == from_seq).values(cursor_seq=to_seq)
        ).rowcount
        if not moved:
            return False
        stamp = db_time(self.conn, now)
        pending = DeliveryStatus.PENDING.value
        rows = ((endpoint_id, org_id, seq, pid, pending, 0, stamp, stamp) for seq, _type, pid in events)
        bulk_insert_rows(self.conn, t.webhook_deliveries, _QUEUE_COLUMNS, rows)
        return True

    def claim(self, now: datetime, *, limit: int, lease: timedelta) -> list[Claimed]:
        """Claim up to ``limit`` due deliveries that head their (endpoint, person) chain: pending, due,
        not claimed by a live worker, on an active endpoint, with no earlier pending event of that
        person for that endpoint. The claim is a conditional UPDATE, so two workers never both win one."""
        d, w = t.webhook_deliveries, t.webhook_endpoints
        earlier = sa.alias(d)
        pending = DeliveryStatus.PENDING.value
        free = sa.or_(d.c.claimed_until.is_(None), d.c.claimed_until < now)
        heads = (
            sa.select(d.c.id)
            .join(w, w.c.id == d.c.endpoint_id)
            .where(
                d.c.status == pending,
                d.c.next_attempt_at <= now,
                free,
                w.c.status == EndpointStatus.ACTIVE.value,
                ~sa.exists().where(
                    earlier.c.endpoint_id == d.c.endpoint_id,
                    earlier.c.person_id == d.c.person_id,
                    earlier.c.event_seq < d.c.event_seq,
                    earlier.c.status == pending,
                ),
            )
            .order_by(d.c.next_attempt_at, d.c.id)
            .limit(limit)
        )
        ids = [int(i) for i in self.conn.execute(heads).scalars()]
        if not ids:
            return []
        won = [
            int(i)
            for i in self.conn.execute(
                sa.update(d)
                .where(d.c.id.in_(ids), d.c.status == pending, free)
                .values(claimed_until=now + lease)
                .returning(d.c.id)
            ).scalars()
        ]
        if not won:
            return []
        rows = self.conn.execute(
            sa.select(
                d.c.id,
                d.c.endpoint_id,
                d.c.org_id,
                d.c.person_id,
                d.c.event_seq,
                d.c.attempts,
                d.c.first_attempt_at,
                w.c.url,
                w.c.secret_enc,
            )
            .join(w, w.c.id == d.c.endpoint_id)
            .where(d.c.id.in_(won))
            .order_by(d.c.endpoint_id, d.c.person_id, d.c.event_seq)
        )
        return [
            Claimed(
                int(r[0]),
                int(r[1]),
                int(r[2]),
                int(r[3]),
                int(r[4]),
                int(r[5]),
                r[6],
                str(r[7]),
                bytes(r[8]),
            )
            for r in rows
        ]

    def settle(self, outcomes: Sequence[Outcome]) -> None:
        """Record attempts: one log row each, and the delivery's new state."""
        if not outcomes:
            return
        a, d = t.webhook_attempts, t.webhook_deliveries
        self.conn.execute(
            sa.insert(a),
            [
                {
                    "delivery_id": o.delivery_id,
                    "endpoint_id": o.endpoint_id,
                    "at": o.at,
                    "status_code": o.status_code,
                    "error": o.error,
                    "duration_ms": o.duration_ms,
                }
                for o in outcomes
            ],
        )
        stmt = (
            sa.update(d)
            .where(d.c.id == sa.bindparam("_id"))
            .values(
                status=sa.bindparam("_status"),
                attempts=d.c.attempts + 1,
                next_attempt_at=sa.bindparam("_next"),
                claimed_until=None,
                first_attempt_at=sa.func.coalesce(d.c.first_attempt_at, sa.bindparam("_at")),
                last_attempt_at=sa.bindparam("_at"),
                delivered_at=sa.bindparam("_delivered"),
                last_status=sa.bindparam("_code"),
                last_error=sa.bindparam("_error"),
            )
        )
        params = []
        for o in outcomes:
            status = (
                DeliveryStatus.DELIVERED if o.ok else DeliveryStatus.FAILED if o.given_up else DeliveryStatus.PENDING
            )
            params.append(
                {
                    "_id": o.delivery_id,
                    "_status": status.value,
                    "_next": o.next_attempt_at or o.at,
                    "_at": o.at,
                    "_delivered": o.at if o.ok else None,
                    "_code": o.status_code,
                    "_error": o.error,
                }
            )
        self.conn.execute(stmt, params)
        w = t.webhook_endpoints
        ok = sorted({o.endpoint_id for o in outcomes if o.ok})
        bad = sorted({o.endpoint_id for o in outcomes if not o.ok} - set(ok))
        at = max(o.at for o in outcomes)
        if ok:
            self.conn.execute(sa.update(w).where(w.c.id.in_(ok)).values(failing_since=None, last_success_at=at))
        if bad:
            self.conn.execute(
                sa.update(w)
                .where(w.c.id.in_(bad), w.c.failing_since.is_(None))
                .values(failing_since=min(o.at for o in outcomes if not o.ok))
            )

    # -- the delivery log ----------------------------------------------------------------------------

    def attempts(self, org_id: int, endpoint_id: int, *, before_id: int | None, limit: int) -> list[dict[str, Any]]:
        """The endpoint's attempts, newest first, with the event each one carried."""
        a, d, e = t.webhook_attempts, t.webhook_deliveries, t.person_events
        q = (
            sa.select(
                a.c.id,
                a.c.at,
                a.c.status_code,
                a.c.error,
                a.c.duration_ms,
                d.c.id.label("delivery_id"),
                d.c.status.label("delivery_status"),
                d.c.attempts,
                d.c.event_seq,
                d.c.person_id,
                e.c.type.label("event_type"),
            )
            .join(d, d.c.id == a.c.delivery_id)
            .join(e, sa.and_(e.c.org_id == d.c.org_id, e.c.seq == d.c.event_seq))
            .where(a.c.endpoint_id == endpoint_id, d.c.org_id == org_id)
        )
        if before_id is not None:
            q = q.where(a.c.id < before_id)
        return [dict(r._mapping) for r in self.conn.execute(q.order_by(a.c.id.desc()).limit(limit))]

    def counts(self, org_id: int, endpoint_id: int) -> dict[str, int]:
        d = t.webhook_deliveries
        rows = self.conn.execute(
            sa.select(d.c.status, sa.func.count())
            .where(d.c.org_id == org_id, d.c.endpoint_id == endpoint_id)
            .group_by(d.c.status)
        )
        out = {s.value: 0 for s in DeliveryStatus}
        out.update({str(s): int(n) for s, n in rows})
        return out


__all__ = ["Claimed", "Outcome", "WebhooksRepo"]
