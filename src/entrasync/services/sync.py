"""A refresh: fetch (Graph), plan (pure), store the plan, and apply it now or after review (§4).

The fetch happens outside any transaction. Planning, storing the plan and (in Auto-sync) applying it
happen in ONE transaction that first locks the organisation's directory, so after a crash the
directory is either before or after the plan, and a hand edit cannot slip in between plan and apply.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from entrasync.adapters.db import tables as t
from entrasync.adapters.db.bulk import bulk_insert
from entrasync.adapters.db.search import contains
from entrasync.adapters.graph.client import GraphClient
from entrasync.adapters.graph.errors import GraphError
from entrasync.adapters.graph.reader import fetch_snapshot
from entrasync.bulkwork import gc_paused
from entrasync.domain.model import Change, ChangeKind, Conflict, EntraUser, Override, Plan
from entrasync.domain.planner import plan as make_plan
from entrasync.errors import ConflictError, EntrasyncError, NotFoundError, StalePlanError
from entrasync.services import audit, connection, leases, notifications, people, sync_settings, sync_state
from entrasync.services.audit import AuditEntry
from entrasync.services.context import Actor, AppContext, directory_version, lock_org

log = logging.getLogger(__name__)

Progress = Callable[[str, dict[str, Any]], None]
PROGRESS_EVERY = 1.0  # seconds between runs.progress writes while reading
_CHUNK = 20000  # ids per expanding IN (well under SQLite's and PostgreSQL's parameter limits)

# Person columns the sync writes, from the target EntraUser.
_TARGET_COLUMNS = (
    ("email", "email"),
    ("user_principal_name", "user_principal_name"),
    ("display_name", "display_name"),
    ("given_name", "given_name"),
    ("surname", "surname"),
    ("job_title", "job_title"),
    ("employee_id", "employee_id"),
    ("office_location", "office_location"),
)


@dataclass
class RefreshResult:
    run_id: int
    outcome: str
    counts: dict[str, int] = field(default_factory=dict)
    graph_requests: int = 0
    read_mode: str | None = None
    hold_reason: str | None = None
    error: str | None = None

    def public(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ApplyResult:
    run_id: int
    applied: dict[str, int]
    rejected: int
    already_applied: bool = False

    def public(self) -> dict[str, Any]:
        return asdict(self)


def _set_progress(ctx: AppContext, run_id: int, phase: str, **extra: Any) -> None:
    with ctx.engine.begin() as conn:
        conn.execute(sa.update(t.runs).where(t.runs.c.id == run_id).values(progress={"phase": phase, **extra}))


def refresh(
    ctx: AppContext,
    org_id: int,
    *,
    trigger: str,
    actor: Actor,
    slot_at: datetime | None = None,
    on_progress: Progress | None = None,
    client: GraphClient | None = None,
) -> RefreshResult:
    """Run one refresh for an org. Raises RefreshRunningError when one is already running.

    A failed fetch ends the run as ``failed``: nothing is planned and nobody is archived.
    """
    creds = connection.credentials(ctx, org_id)  # raises NotConnectedError before any run is recorded
    run_id = leases.start_run(ctx, org_id, trigger=trigger, triggered_by=actor.label, slot_at=slot_at)
    report: Progress = on_progress or (lambda _phase, _data: None)
    own_client = client is None
    gclient = client
    try:
        if gclient is None:
            gclient = GraphClient(connection.graph_config(ctx, creds))
        with leases.LeaseKeeper(ctx, org_id, run_id):
            return _refresh(ctx, org_id, run_id, actor, gclient, report)
    except Exception as exc:
        message = _failure_message(exc)
        log.warning("refresh run %s failed: %s", run_id, message, exc_info=not isinstance(exc, GraphError))
        requests = gclient.request_count if gclient is not None else 0
        _fail(ctx, org_id, run_id, message, requests)
        return RefreshResult(run_id=run_id, outcome="failed", error=message, graph_requests=requests)
    finally:
        leases.release(ctx, org_id, run_id)
        if own_client and gclient is not None:
            gclient.close()


def _failure_message(exc: Exception) -> str:
    """What run history, the notification and the Integrations row say. Never raw database or driver
    text (SQL, constraint names): that detail goes to the log, with the run id."""
    if isinstance(exc, GraphError):
        return f"Reading Microsoft Entra ID failed: {exc}"
    if isinstance(exc, EntrasyncError):
        return f"The refresh failed: {exc.message}"
    return (
        "The refresh failed because of an internal error; nothing was changed. The server log has the details "
        "(search it for this run's id)."
    )


def _fail(ctx: AppContext, org_id: int, run_id: int, message: str, requests: int) -> None:
    now = ctx.now()
    with ctx.engine.begin() as conn:
        conn.execute(
            sa.update(t.runs)
            .where(t.runs.c.id == run_id)
            .values(
                outcome="failed",
                finished_at=now,
                error=message,
                plan_state="none",
                graph_requests=requests,
                progress={"phase": "failed"},
            )
        )
        settings = sync_settings.load(conn, org_id)
        notifications.on_refresh(conn, org_id, settings, run_id, "failed", {}, now, error=message)
    connection.record_error(ctx, org_id, message)


def _refresh(
    ctx: AppContext, org_id: int, run_id: int, actor: Actor, client: GraphClient, report: Progress
) -> RefreshResult:
    with ctx.reader.connect() as conn, gc_paused():
        settings = sync_settings.load(conn, org_id)
        graph_filter = settings.active_graph_filter
        cursor = sync_state.read(conn, org_id, graph_filter) if graph_filter is None else None

    _set_progress(ctx, run_id, "reading")
    report("reading", {})

    last_saved = 0.0

    def read_progress(n: int) -> None:
        nonlocal last_saved
        report("reading", {"people_read": n})
        if time.monotonic() - last_saved >= PROGRESS_EVERY:
            last_saved = time.monotonic()
            _set_progress(ctx, run_id, "reading", people_read=n)

    result = fetch_snapshot(
        client,
        graph_filter=graph_filter,
        group_ids=list(settings.active_group_ids) if settings.active_group_ids is not None else None,
        cursor=cursor,
        on_progress=read_progress,
    )
    del cursor  # the previous mirror: the result holds the new one
    snapshot = result.snapshot
    report("planning", {"people_read": len(snapshot.users)})
    _set_progress(ctx, run_id, "planning", people_read=len(snapshot.users))

    now = ctx.now()
    sync_actor = Actor(label=f"sync run {run_id}", run_id=run_id)
    with ctx.engine.begin() as conn:
        # Lock the directory for the plan and (maybe) its apply: no hand edit can slip in between.
        _lock_directory(conn, org_id)
        if not leases.holds(conn, org_id, run_id):
            # Swept as dead while stalled: another refresh may own the org now. Change nothing.
            raise ConflictError("This refresh took longer than its lease and was stopped; nothing was changed.")
        base_version = directory_version(conn, org_id)
        with gc_paused():
            records = people.load_records(conn, org_id)
            overrides = _load_overrides(conn, org_id)
            the_plan = make_plan(snapshot, records, settings.scope(), overrides)
        # Keep what the rest of the run needs, then let the snapshot and the directory records go
        # before storing and applying the plan: at 100,000 users that is ~150 MB (§9 peak memory).
        new_link = result.cursor.delta_link if result.cursor is not None else None
        link_only = result.unchanged and new_link is not None
        cursor_blob = sync_state.dump(result.cursor) if result.cursor is not None and not link_only else None
        requests, read_mode, people_read = result.requests, result.mode, len(snapshot.users)
        del result, snapshot, records
        # A newer refresh replaces a waiting plan.
        conn.execute(
            sa.update(t.runs)
            .where(t.runs.c.org_id == org_id, t.runs.c.plan_state == "pending", t.runs.c.id != run_id)
            .values(plan_state="superseded")
        )
        counts = _counts(the_plan)
        if not the_plan.changes:
            outcome, plan_state = "no_changes", "none"
        elif the_plan.held:
            outcome, plan_state = "held", "pending"
        elif settings.mode == "manual":
            outcome, plan_state = "awaiting_review", "pending"
        else:
            outcome, plan_state = "applied", "applied"
        # Auto-sync applies every change at once: store them already accepted and applied (what a
        # pending store followed by an apply with no rejections leaves) and apply from memory.
        rows = _store_plan(conn, org_id, run_id, the_plan, accept=outcome == "applied")
        hold_reason, n_changes = the_plan.hold_reason, len(the_plan.changes)
        del the_plan
        if outcome == "applied":
            report("applying", {"changes": n_changes})
            _apply_changes(conn, org_id, rows, sync_actor, now)
        del rows
        if link_only and new_link is not None:
            sync_state.write_link(conn, org_id, new_link, now)
        else:
            sync_state.write(conn, org_id, cursor_blob, graph_filter, now, delta_link=new_link)
        conn.execute(
            sa.update(t.runs)
            .where(t.runs.c.id == run_id)
            .values(
                outcome=outcome,
                plan_state=plan_state,
                finished_at=ctx.now(),
                counts=counts,
                graph_requests=requests,
                read_mode=read_mode,
                hold_reason=hold_reason,
                base_version=base_version,
                progress={"phase": "done", "people_read": people_read},
            )
        )
        conn.execute(sa.update(t.connections).where(t.connections.c.org_id == org_id).values(last_error=None))
        notifications.on_refresh(conn, org_id, settings, run_id, outcome, counts, now, hold_reason=hold_reason)
    report("done", {"outcome": outcome})
    return RefreshResult(
        run_id=run_id,
        outcome=outcome,
        counts=counts,
        graph_requests=requests,
        read_mode=read_mode,
        hold_reason=hold_reason,
    )


def _lock_directory(conn: Connection, org_id: int) -> None:
    """Row lock on the org (PostgreSQL); SQLite's BEGIN IMMEDIATE already holds the write lock."""
    conn.execute(sa.select(t.organisations.c.id).where(t.organisations.c.id == org_id).with_for_update())


def _load_overrides(conn: Connection, org_id: int) -> list[Override]:
    o = t.overrides
    return [
        Override(subject=s, kind=ChangeKind(k), fingerprint=f)
        for s, k, f in conn.execute(sa.select(o.c.subject, o.c.kind, o.c.fingerprint).where(o.c.org_id == org_id))
    ]


def _counts(p: Plan) -> dict[str, int]:
    counts = p.counts()
    counts["overridden"] = len(p.overridden)
    counts["kept"] = len(p.kept)
    counts["conflicts"] = len(p.conflicts)
    counts["matched"] = len(p.matched_ids)
    return counts


class _Target(Mapping[str, Any]):
    """A plan row's ``target``: the Entra user read as the mapping its stored JSON decodes to.

    A view, not a copy: a 100,000-joiner plan keeps one small object per row instead of a dict of
    13 fields (the §9 first-sync peak; ``bench/run.py --memtrace "first sync"`` shows it per phase).
    The bulk insert writes it as that same JSON.
    """

    __slots__ = ("_user",)

    def __init__(self, user: EntraUser) -> None:
        self._user = user

    def __getitem__(self, key: str) -> Any:
        if key not in _TARGET_KEYS:
            raise KeyError(key)
        return getattr(self._user, key)

    def __iter__(self) -> Iterator[str]:
        return iter(EntraUser.__slots__)

    def __len__(self) -> int:
        return len(EntraUser.__slots__)


_TARGET_KEYS = frozenset(EntraUser.__slots__)


def _target_view(u: EntraUser | None) -> Mapping[str, Any] | None:
    return None if u is None else _Target(u)


def _plan_row(run_id: int, org_id: int, c: Change, decision: str, applied: bool) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "org_id": org_id,
        "kind": c.kind.value,
        "subject": c.subject,
        "person_id": c.person_id,
        "entra_id": c.entra_id,
        "reason": c.reason.value,
        "display_name": c.display_name,
        "email": c.email,
        "diffs": [[d.field, d.old, d.new, d.manual_edit] for d in c.diffs],
        "target": _target_view(c.target),
        "fingerprint": c.fingerprint,
        "decision": decision,
        "applied": applied,
    }


def _store_plan(conn: Connection, org_id: int, run_id: int, p: Plan, *, accept: bool = False) -> list[dict[str, Any]]:
    """Insert the plan's rows; return those of its changes (``p.changes``, in order).

    ``accept`` stores the changes as accepted and applied, for an apply in the same transaction.
    """
    decision = "accepted" if accept else "pending"
    changes = [_plan_row(run_id, org_id, c, decision, accept) for c in p.changes]
    rows: list[dict[str, Any]] = list(changes)
    rows.extend(_plan_row(run_id, org_id, c, "overridden", False) for c in p.overridden)
    for k in p.kept:
        rows.append(
            {
                "run_id": run_id,
                "org_id": org_id,
                "kind": "keep",
                "subject": f"p:{k.person_id}",
                "person_id": k.person_id,
                "entra_id": None,
                "reason": "kept",
                "display_name": None,
                "email": None,
                "diffs": [["note", None, k.reason, False]],
                "target": None,
                "fingerprint": "-",
                "decision": "kept",
                "applied": False,
            }
        )
    for cf in p.conflicts:
        rows.append(
            {
                "run_id": run_id,
                "org_id": org_id,
                "kind": "conflict",
                "subject": f"m:{cf.email.lower()}",
                "person_id": cf.person_id,
                # One Entra id fits the column; several are named in the note (spec §4.3: both ids).
                "entra_id": cf.entra_ids[0] if len(cf.entra_ids) == 1 else None,
                "reason": "conflict",
                "display_name": None,
                "email": cf.email,
                "diffs": [["note", None, _conflict_note(cf), False]],
                "target": None,
                "fingerprint": "-",
                "decision": "conflict",
                "applied": False,
            }
        )
    if rows:
        bulk_insert(conn, t.plan_changes, rows)
    return changes


def _conflict_note(cf: Conflict) -> str:
    if len(cf.entra_ids) > 1:
        return f"{len(cf.entra_ids)} Entra users claim this e-mail: {', '.join(cf.entra_ids)}"
    return f"Entra user {cf.entra_ids[0]} claims an e-mail someone else in the directory holds"


def _change_rows(conn: Connection, run_id: int, only_ids: Iterable[int] | None) -> list[dict[str, Any]]:
    pc = t.plan_changes
    q = sa.select(pc).where(pc.c.run_id == run_id, pc.c.decision.in_(("pending", "accepted", "rejected")))
    rows = [dict(r._mapping) for r in conn.execute(q.order_by(pc.c.id))]
    if only_ids is not None:
        keep = set(only_ids)
        rows = [r for r in rows if r["id"] in keep]
    return rows


def _apply_rows(
    conn: Connection,
    org_id: int,
    run_id: int,
    rows: Sequence[dict[str, Any]],
    rejected: set[int],
    actor: Actor,
    now: datetime,
) -> dict[str, int]:
    """Write accepted changes to the directory and record rejected ones as overrides.

    Runs inside the caller's transaction. Bulk statements throughout: a first sync of 100,000
    people is a handful of executemany calls, not 100,000 round trips.
    """
    accepted = [r for r in rows if r["id"] not in rejected and r["decision"] != "rejected"]
    rejected_rows = [r for r in rows if r["id"] in rejected or r["decision"] == "rejected"]
    applied = _apply_changes(conn, org_id, accepted, actor, now)

    # 6. Rejections become overrides, tied to the exact Entra data that produced them.
    for r in rejected_rows:
        exists = conn.execute(
            sa.select(t.overrides.c.id).where(
                t.overrides.c.org_id == org_id,
                t.overrides.c.subject == r["subject"],
                t.overrides.c.kind == r["kind"],
                t.overrides.c.fingerprint == r["fingerprint"],
            )
        ).first()
        if exists is None:
            conn.execute(
                sa.insert(t.overrides).values(
                    org_id=org_id,
                    subject=r["subject"],
                    kind=r["kind"],
                    fingerprint=r["fingerprint"],
                    person_id=r["person_id"],
                    run_id=run_id,
                    created_by=actor.label,
                    created_at=now,
                )
            )
    _set_decision(conn, [r["id"] for r in accepted], "accepted", True)
    _set_decision(conn, [r["id"] for r in rejected_rows], "rejected", False)
    return applied


def _set_decision(conn: Connection, ids: list[int], decision: str, applied: bool) -> None:
    pc = t.plan_changes
    for i in range(0, len(ids), _CHUNK):
        conn.execute(
            sa.update(pc)
            .where(pc.c.id.in_(sa.bindparam("ids", expanding=True)))
            .values(decision=decision, applied=applied),
            {"ids": ids[i : i + _CHUNK]},
        )


def _apply_changes(
    conn: Connection, org_id: int, accepted: Sequence[dict[str, Any]], actor: Actor, now: datetime
) -> dict[str, int]:
    """Write accepted changes (plan rows) to the directory, with audit rows per person and field."""
    lock_org(conn, org_id)
    p = t.people
    applied: dict[str, int] = {k.value: 0 for k in ChangeKind}

    # 1. Joiners: insert people.
    creates = [r for r in accepted if r["kind"] == ChangeKind.CREATE.value]
    if creates:
        bulk_insert(
            conn,
            p,
            (
                {
                    "org_id": org_id,
                    "entra_id": r["target"]["id"],
                    "email": r["target_email"],
                    "email_lower": r["target_email"].lower(),
                    "status": "active",
                    "source": "entra",
                    "manual_fields": [],
                    "created_at": now,
                    "updated_at": now,
                    "last_synced_at": now,
                    **{col: r["target"][src] for col, src in _TARGET_COLUMNS[1:]},
                }
                for r in (_with_email(r) for r in creates)
            ),
        )
    # Managers resolve to people who are not archived (or are restored by this plan).
    entra_to_person = {
        e: i
        for i, e in conn.execute(
            sa.select(p.c.id, p.c.entra_id).where(
                p.c.org_id == org_id, p.c.entra_id.is_not(None), p.c.status != "archived"
            )
        )
    }

    # 2. Updates, moves and restores: write every mapped column from the target.
    writes = [r for r in accepted if r["kind"] in ("update", "move", "restore")]
    if writes:
        conn.execute(
            sa.update(p)
            .where(p.c.id == sa.bindparam("_pid"))
            .values(
                {
                    **{col: sa.bindparam(f"_{col}") for col, _ in _TARGET_COLUMNS},
                    "email_lower": sa.bindparam("_email_lower"),
                    "entra_id": sa.bindparam("_entra_id"),
                    "source": "entra",
                    "manual_fields": [],
                    "updated_at": now,
                    "last_synced_at": now,
                    "status": sa.bindparam("_status"),
                    "archived_at": sa.bindparam("_archived_at"),
                }
            ),
            [
                {
                    "_pid": r["person_id"],
                    **{
                        f"_{col}": (_email(r["target"]) if col == "email" else r["target"][src])
                        for col, src in _TARGET_COLUMNS
                    },
                    "_email_lower": _email(r["target"]).lower(),
                    "_entra_id": r["target"]["id"],
                    "_status": "active" if r["kind"] == "restore" else r["current_status"],
                    "_archived_at": None if r["kind"] == "restore" else r["current_archived_at"],
                }
                for r in _with_current(conn, writes)
            ],
        )
        for r in writes:
            entra_to_person[r["target"]["id"]] = r["person_id"]

    # 3. Leavers: archive (nothing is ever deleted).
    archives = [r for r in accepted if r["kind"] == ChangeKind.ARCHIVE.value]
    archive_ids = [r["person_id"] for r in archives]
    for i in range(0, len(archive_ids), _CHUNK):
        conn.execute(
            sa.update(p)
            .where(p.c.id.in_(sa.bindparam("ids", expanding=True)))
            .values(status="archived", archived_at=now, updated_at=now),
            {"ids": archive_ids[i : i + _CHUNK]},
        )

    # 4. Departments and managers for everyone the plan wrote.
    targets = creates + writes
    if targets:
        person_ids = [entra_to_person[r["target"]["id"]] for r in targets]
        _delete_departments(conn, person_ids[len(creates) :])  # people created just now have none
        names = {r["target"]["department"] for r in targets if r["target"]["department"]}
        dept_ids = people.department_ids(conn, org_id, names)
        dept_rows = [
            {"person_id": pid, "department_id": dept_ids[r["target"]["department"]]}
            for pid, r in zip(person_ids, targets, strict=True)
            if r["target"]["department"]
        ]
        bulk_insert(conn, t.person_departments, dept_rows)
        archived_now = {r["person_id"] for r in archives}
        mgr_rows: list[tuple[int, int | None]] = []
        for pid, r in zip(person_ids, targets, strict=True):
            mid = r["target"].get("manager_id")
            mpid = entra_to_person.get(mid) if mid else None
            if mpid in archived_now or mpid == pid:
                mpid = None
            mgr_rows.append((pid, mpid))
        _set_managers(conn, mgr_rows)

    # 5. Audit, per person and field (streamed: one row per person and field).
    for r in accepted:
        applied[r["kind"]] += 1
    audit.write(conn, org_id, actor, now, _audit_entries(accepted, entra_to_person))
    return applied


def _audit_entries(accepted: Iterable[dict[str, Any]], entra_to_person: dict[Any, int]) -> Iterator[AuditEntry]:
    for r in accepted:
        kind = r["kind"]
        pid = r["person_id"] if r["person_id"] is not None else entra_to_person.get((r["target"] or {}).get("id"))
        if kind == "create":
            yield AuditEntry("person", "create", pid, None, None, {d[0]: d[2] for d in r["diffs"]})
        elif kind == "archive":
            yield AuditEntry("person", "archive", pid, "status", "active", "archived")
            yield AuditEntry("person", "archive", pid, "reason", None, r["reason"])
        else:
            yield from (AuditEntry("person", kind, pid, d[0], d[1], d[2]) for d in r["diffs"])


def _set_managers(conn: Connection, rows: list[tuple[int, int | None]]) -> None:
    """people.manager_id for many (person id, manager id) pairs."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        for i in range(0, len(rows), _CHUNK):
            chunk = rows[i : i + _CHUNK]
            conn.exec_driver_sql(
                "UPDATE people SET manager_id = v.m FROM unnest(%(p)s::integer[], %(m)s::integer[]) AS v(p, m) "
                "WHERE people.id = v.p",
                {"p": [r[0] for r in chunk], "m": [r[1] for r in chunk]},
            )
        return
    raw = conn.connection.driver_connection
    assert raw is not None
    cur = raw.cursor()
    try:
        cur.executemany("UPDATE people SET manager_id = ? WHERE id = ?", [(m, pid) for pid, m in rows])
    finally:
        cur.close()


def _delete_departments(conn: Connection, person_ids: list[int]) -> None:
    for i in range(0, len(person_ids), 20000):
        chunk = person_ids[i : i + 20000]
        conn.execute(
            sa.delete(t.person_departments).where(
                t.person_departments.c.person_id.in_(sa.bindparam("ids", expanding=True))
            ),
            {"ids": chunk},
        )


def _email(target: dict[str, Any]) -> str:
    return str(target.get("mail") or target["user_principal_name"])


def _with_email(r: dict[str, Any]) -> dict[str, Any]:
    r = dict(r)
    r["target_email"] = _email(r["target"])
    r["target"] = {**r["target"], "email": r["target_email"]}
    return r


def _with_current(conn: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ids = [r["person_id"] for r in rows]
    current: dict[int, tuple[str, Any]] = {}
    for i in range(0, len(ids), 20000):
        chunk = ids[i : i + 20000]
        for pid, status, archived_at in conn.execute(
            sa.select(t.people.c.id, t.people.c.status, t.people.c.archived_at).where(
                t.people.c.id.in_(sa.bindparam("ids", expanding=True))
            ),
            {"ids": chunk},
        ):
            current[pid] = (status, archived_at)
    out = []
    for r in rows:
        status, archived_at = current[r["person_id"]]
        out.append(
            {
                **r,
                "target": {**r["target"], "email": _email(r["target"])},
                "current_status": status,
                "current_archived_at": archived_at,
            }
        )
    return out


# ---- review ------------------------------------------------------------------------------------


def pending_run(conn: Connection, org_id: int) -> dict[str, Any] | None:
    row = conn.execute(
        sa.select(t.runs)
        .where(t.runs.c.org_id == org_id, t.runs.c.plan_state == "pending")
        .order_by(t.runs.c.id.desc())
        .limit(1)
    ).first()
    return dict(row._mapping) if row else None


def decide(ctx: AppContext, org_id: int, run_id: int, change_ids: Iterable[int], decision: str) -> int:
    """Mark changes of a waiting plan accepted or rejected (the UI's per-change and per-tab buttons)."""
    if decision not in ("accepted", "rejected", "pending"):
        raise ConflictError("A decision is accepted, rejected or pending.")
    ids = list(change_ids)
    with ctx.engine.begin() as conn:
        run = _require_pending(conn, org_id, run_id)
        pc = t.plan_changes
        res = conn.execute(
            sa.update(pc)
            .where(pc.c.run_id == run["id"], pc.c.id.in_(ids), pc.c.decision.in_(("pending", "accepted", "rejected")))
            .values(decision=decision)
        )
        return int(res.rowcount)


def _require_pending(
    conn: Connection, org_id: int, run_id: int | None, *, allow_applied: bool = False
) -> dict[str, Any]:
    """The run whose plan waits for review. With ``allow_applied`` (apply is idempotent) an already
    applied plan is returned too: by id, or, without an id, when it is the newest run."""
    if run_id is None:
        run = pending_run(conn, org_id)
        if run is None and allow_applied:
            newest = conn.execute(
                sa.select(t.runs).where(t.runs.c.org_id == org_id).order_by(t.runs.c.id.desc()).limit(1)
            ).first()
            if newest is not None and newest._mapping["plan_state"] == "applied":
                return dict(newest._mapping)
        if run is None:
            raise NotFoundError("No plan is waiting for review. Run Refresh to compute one.")
        return run
    row = conn.execute(sa.select(t.runs).where(t.runs.c.org_id == org_id, t.runs.c.id == run_id)).first()
    if row is None:
        raise NotFoundError(f"No run {run_id} in this organisation.")
    run = dict(row._mapping)
    if run["plan_state"] == "superseded":
        raise StalePlanError(
            f"The plan of run {run_id} was replaced by a newer refresh. Review the newest plan instead."
        )
    if run["plan_state"] == "applied" and allow_applied:
        return run
    if run["plan_state"] != "pending":
        raise NotFoundError(f"Run {run_id} has no plan waiting for review.")
    return run


def apply_plan(
    ctx: AppContext, org_id: int, actor: Actor, *, run_id: int | None = None, reject: Iterable[int] = ()
) -> ApplyResult:
    """Apply a waiting (or held) plan in one transaction: pending and accepted changes are applied,
    rejected ones (plus ``reject``) become overrides. A stale plan is refused; applying twice is a no-op."""
    now = ctx.now()
    reject_ids = set(reject)
    with ctx.engine.begin() as conn:
        _lock_directory(conn, org_id)
        run = _require_pending(conn, org_id, run_id, allow_applied=True)
        if run["plan_state"] == "applied":
            return ApplyResult(run_id=run["id"], applied={}, rejected=0, already_applied=True)
        rows = _change_rows(conn, run["id"], None)
        unknown = reject_ids - {r["id"] for r in rows}
        if unknown:
            raise NotFoundError(f"No change {', '.join(map(str, sorted(unknown)))} in the plan of run {run['id']}.")
        version = directory_version(conn, org_id)
        if version != run["base_version"]:
            raise StalePlanError(
                f"The directory changed after run {run['id']} computed this plan, so it may no longer be right. "
                "Run Refresh again and review the new plan."
            )
        applied = _apply_rows(conn, org_id, run["id"], rows, reject_ids, actor, now)
        rejected = sum(1 for r in rows if r["id"] in reject_ids or r["decision"] == "rejected")
        conn.execute(sa.update(t.runs).where(t.runs.c.id == run["id"]).values(plan_state="applied", outcome="applied"))
    return ApplyResult(run_id=run["id"], applied=applied, rejected=rejected)


# The User Sync tabs (§4.4): the change kinds each tab counts and offers to accept or reject.
TABS: dict[str, tuple[str, ...]] = {
    "entra_only": ("create", "restore"),
    "directory_only": ("archive",),
    "differences": ("update", "move"),
}
# Rows a tab also lists, after its changes, that are not decisions: admins the sync keeps, and
# e-mail conflicts. They never count towards the tab's (N).
TAB_NOTES: dict[str, tuple[str, ...]] = {"entra_only": (), "directory_only": ("keep",), "differences": ("conflict",)}
DECIDABLE = ("pending", "accepted", "rejected")


def plan_changes(
    conn: Connection,
    org_id: int,
    run_id: int,
    *,
    tab: str | None = None,
    search: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[dict[str, Any]], int]:
    pc = t.plan_changes
    conds: list[Any] = [pc.c.run_id == run_id, pc.c.org_id == org_id]
    if tab:
        if tab not in TABS:
            raise NotFoundError(f"No tab '{tab}'; tabs are {', '.join(TABS)} and matched.")
        conds.append(pc.c.kind.in_(TABS[tab] + TAB_NOTES[tab]))
    if search:
        conds.append(sa.or_(contains(pc.c.email, search), contains(pc.c.display_name, search)))
    total = int(conn.execute(sa.select(sa.func.count()).select_from(pc).where(*conds)).scalar_one())
    per_page = max(1, min(per_page, 500))
    rows = conn.execute(
        sa.select(pc)
        .where(*conds)
        # Changes are stored before overridden, kept and conflict rows, so id order lists the
        # decisions first and lets the (run_id, kind, id) index serve deep pages.
        .order_by(pc.c.id)
        .limit(per_page)
        .offset((max(page, 1) - 1) * per_page)
    )
    return [dict(r._mapping) for r in rows], total


def tab_counts(conn: Connection, org_id: int, run_id: int) -> dict[str, int]:
    """Changes per tab; overridden changes, kept admins and conflicts are listed but not counted."""
    pc = t.plan_changes
    by_kind: dict[str, int] = dict(
        conn.execute(
            sa.select(pc.c.kind, sa.func.count())
            .where(pc.c.run_id == run_id, pc.c.org_id == org_id, pc.c.decision.in_(DECIDABLE))
            .group_by(pc.c.kind)
        ).all()
    )
    return {tab: sum(int(by_kind.get(k, 0)) for k in kinds) for tab, kinds in TABS.items()}
