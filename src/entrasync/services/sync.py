"""A refresh: fetch (Graph), plan (pure), store the plan, and apply it now or after review (§4).

The fetch happens outside any transaction. Planning, storing the plan and (in Auto-sync) applying it
happen in ONE transaction that first locks the organisation's directory, so after a crash the
directory is either before or after the plan, and a hand edit cannot slip in between plan and apply.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from entrasync.adapters.db import mirror_patches, sync_state_repo
from entrasync.adapters.graph.client import GraphClient
from entrasync.adapters.graph.errors import DeltaTokenExpiredError, GraphError
from entrasync.adapters.graph.reader import DeltaCursor, FetchResult, StoredCursor, fetch_snapshot, mapper_for
from entrasync.domain.mapping import DEFAULTS as DEFAULT_MAPS
from entrasync.domain.planner import plan as make_plan
from entrasync.domain.rest import Inputs, Rest, counts_at_rest, mapping_digest
from entrasync.domain.rest import counts as rest_counts
from entrasync.domain.settings import SyncSettings
from entrasync.domain.states import Mode, PlanState, RunOutcome
from entrasync.errors import ConflictError, EntrasyncError
from entrasync.services import connection, graph_budget, neighbourhood, notifications, refresh_jobs
from entrasync.services.context import Actor, AppContext
from entrasync.services.graph_tokens import StoredTokens

log = logging.getLogger(__name__)

Progress = Callable[[str, dict[str, Any]], None]
PROGRESS_EVERY = 1.0  # seconds between runs.progress writes while reading


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


def _set_progress(ctx: AppContext, run_id: int, phase: str, **extra: Any) -> None:
    with ctx.write() as uow:
        uow.runs.update(run_id, progress={"phase": phase, **extra})


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
    """Run one refresh for an org in this process (the CLI, the demo). Raises RefreshRunningError when
    one is already queued or running, and NotConnectedError before any run is recorded.

    Any failure after the run is recorded (a credential that cannot be decrypted, a bad URL, a failed
    fetch) ends it as ``failed``: nothing is planned and nobody is archived.
    """
    # refresh_jobs.start raises NotConnectedError inside its transaction, before any run is recorded
    run_id = refresh_jobs.start(ctx, org_id, trigger=trigger, triggered_by=actor.label, slot_at=slot_at)
    return _execute(ctx, org_id, run_id, on_progress, client)


def run_queued(
    ctx: AppContext, org_id: int, run_id: int, *, on_progress: Progress | None = None, client: GraphClient | None = None
) -> RefreshResult | None:
    """Run a queued refresh (the refresh job, on a worker or in ``entrasync serve``): None when the run
    is not queued any more (failed as lost, or claimed by another worker)."""
    if not refresh_jobs.claim(ctx, org_id, run_id):
        log.info("run %s of org %s is not queued any more; nothing to do", run_id, org_id)
        return None
    return _execute(ctx, org_id, run_id, on_progress, client)


def _execute(
    ctx: AppContext, org_id: int, run_id: int, on_progress: Progress | None, client: GraphClient | None
) -> RefreshResult:
    """A claimed run, under its lease, from the Graph client to its outcome."""
    report: Progress = on_progress or (lambda _phase, _data: None)
    own_client = client is None
    gclient = client
    try:
        if gclient is None:
            with ctx.read() as uow:  # the connection (credentials, stored token) and the budget's size
                row = uow.connections.get(org_id)
                creds = connection.credentials_of(ctx, row)
                budget = graph_budget.for_org(uow, ctx, org_id, creds.tenant_id, creds.client_id)
            tokens = StoredTokens(ctx, org_id, first=StoredTokens.held_in(row))
            gclient = GraphClient(connection.graph_config(ctx, creds), graph_budget=budget, token_store=tokens)
        with refresh_jobs.Lease(ctx, run_id):
            return _refresh(ctx, org_id, run_id, gclient, report)
    except Exception as exc:
        message = _failure_message(exc)
        log.warning(
            "refresh run %s failed: %s", run_id, message, exc_info=not isinstance(exc, EntrasyncError | GraphError)
        )
        requests = gclient.request_count if gclient is not None else 0
        _fail(ctx, org_id, run_id, message, requests)
        return RefreshResult(run_id=run_id, outcome=RunOutcome.FAILED.value, error=message, graph_requests=requests)
    finally:
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
    """End a run this process held as failed (unless it was already swept as dead: told once)."""
    now = ctx.now()
    with ctx.write() as uow:
        if not uow.runs.fail_if_running(run_id, now, message):
            return
        uow.runs.update(run_id, graph_requests=requests)
        notifications.on_refresh(uow, org_id, run_id, RunOutcome.FAILED, {}, now, error=message)
        uow.connections.record_error(org_id, message)


def _read(ctx: AppContext, org_id: int, run_id: int, client: GraphClient, report: Progress) -> _Read:
    """Fetch (no transaction open): the settings and the stored delta link first, then Graph. The stored
    mirror is loaded only if the delta round brings a change or the refresh has to plan."""
    with ctx.write() as uow:  # the "reading" mark in the same transaction
        settings = uow.settings.load(org_id)
        graph_filter = settings.active_graph_filter
        digest = stored_mapping_digest(settings)
        link, rest = uow.sync_state.link(org_id, graph_filter, digest) if graph_filter is None else (None, None)
        uow.runs.update(run_id, progress={"phase": "reading"})
    mapper = mapper_for(settings.field_maps())

    def load_mirror() -> DeltaCursor | None:
        with ctx.read() as uow:
            return uow.sync_state.mirror(org_id)

    report("reading", {})
    last_saved = 0.0  # the first count is saved at once (a small tenant's read may end within a second)

    def read_progress(n: int) -> None:
        nonlocal last_saved
        report("reading", {"people_read": n})
        # 0 (an empty delta round) says no more than the "reading" mark already saved
        if n and time.monotonic() - last_saved >= PROGRESS_EVERY:
            last_saved = time.monotonic()
            _set_progress(ctx, run_id, "reading", people_read=n)

    groups = settings.active_group_ids
    group_ids = list(groups) if groups is not None else None
    cursor = StoredCursor(link, load_mirror) if link else None
    result = fetch_snapshot(client, graph_filter=graph_filter, group_ids=group_ids, cursor=cursor,
                            on_progress=read_progress, mapper=mapper)  # fmt: skip
    return _Read(result, graph_filter, rest, client, group_ids, read_progress, mapper, digest)


def _mirror_write(uow: Any, org_id: int, result: FetchResult) -> tuple[bytes | None, tuple[bytes, int] | None]:
    """What to store of the mirror after a read: a patch of the users a delta round touched, or the whole
    mirror (a full read, or past the patches' limits: adapters.db.mirror_patches); (None, None): nothing."""
    cursor = result.cursor
    if cursor is None:
        return None, None
    touched = result.previous
    if (
        result.mode == "delta"
        and touched is not None
        and result.delta_link
        and mirror_patches.should_patch(uow.sync_state.patch_load(org_id), len(touched), len(cursor.users))
    ):
        return None, mirror_patches.dump_patch(cursor.users, touched, cursor.soft_deleted_ids)
    return sync_state_repo.dump(cursor), None


def stored_mapping_digest(settings: SyncSettings) -> str | None:
    """The digest sync_state keeps beside the mirror: None for the default mapping (mirrors stored before
    mappings existed stay valid), else a digest of the effective mapping (its sources and defaults)."""
    maps = settings.field_maps()
    if maps == DEFAULT_MAPS:
        return None
    return mapping_digest([[m.field, m.source, m.default] for m in maps])


@dataclass
class _Read:
    result: FetchResult
    graph_filter: str | None
    rest: Rest | None  # the last clean run's rest (a delta round only)
    client: GraphClient
    group_ids: list[str] | None
    progress: Callable[[int], None]
    mapper: Any = None
    digest: str | None = None

    def snapshot(self) -> FetchResult:
        """The result with its snapshot built; a mirror gone unreadable since the round means a full read."""
        try:
            _ = self.result.snapshot
        except DeltaTokenExpiredError:
            self.result = fetch_snapshot(self.client, graph_filter=self.graph_filter, group_ids=self.group_ids,
                                         cursor=None, on_progress=self.progress, mapper=self.mapper)  # fmt: skip
        return self.result


def _inputs(
    uow: Any, org_id: int, settings: SyncSettings, version: int, result: FetchResult, overrides: Any = None
) -> Inputs:
    """The digests of a plan's inputs (``overrides``: the organisation's, when the caller loaded them)."""
    loaded = uow.overrides.load(org_id) if overrides is None else overrides
    return Inputs.of(
        version=version, settings=settings.public(),
        overrides=[(o.subject, o.part, o.value) for o in loaded],
        soft_deleted_ids=result.soft_deleted_ids, group_member_ids=result.group_member_ids,
        mapping=mapping_digest({"mapping": settings.public()["mapping"], "link_by": settings.link_by,
                                "manual_people": settings.manual_people}),
    )  # fmt: skip


def _at_rest(ctx: AppContext, org_id: int, run_id: int, read: _Read, report: Progress) -> RefreshResult | None:
    """An empty delta round on a directory at rest (domain.rest): record ``no_changes`` without loading
    the mirror or planning. None when an invariant no longer holds (then the refresh plans in full)."""
    rest, result = read.rest, read.result
    assert rest is not None and result.delta_link
    now = ctx.now()
    with ctx.write() as uow:
        uow.orgs.lock(org_id)  # the same lock as a plan: no hand edit slips in between check and record
        if not refresh_jobs.holds(uow, ctx, run_id):
            raise ConflictError("This refresh took longer than its lease and was stopped; nothing was changed.")
        version = uow.orgs.version(org_id)
        settings = uow.settings.load(org_id)
        broken = rest.broken(_inputs(uow, org_id, settings, version, result))
        if broken:
            log.info("run %s plans in full: changed since run %s: %s", run_id, rest.run_id, ", ".join(broken))
            return None
        if any(rest.counts.get(k) for k in ("overridden", "kept", "conflicts")):
            # Only then: the basis run may be a first sync of 100,000 plan rows, which the copy scans.
            uow.plans.copy_standing(org_id, rest.run_id, run_id)
        uow.sync_state.write_link(org_id, result.delta_link, now)
        counts = dict(rest.counts)
        uow.runs.update(
            run_id, outcome=RunOutcome.NO_CHANGES.value, plan_state=PlanState.NONE.value, finished_at=ctx.now(),
            counts=counts, graph_requests=result.requests, read_mode=result.mode, hold_reason=None,
            base_version=version, progress={"phase": "done", "people_read": rest.users, "at_rest_since": rest.run_id},
        )  # fmt: skip
        uow.connections.record_error(org_id, None)
        notifications.on_refresh(uow, org_id, run_id, RunOutcome.NO_CHANGES, counts, now, settings=settings)
    report("done", {"outcome": RunOutcome.NO_CHANGES.value})
    return RefreshResult(run_id=run_id, outcome=RunOutcome.NO_CHANGES.value, counts=counts,
                         graph_requests=result.requests, read_mode=result.mode)  # fmt: skip


def _refresh(ctx: AppContext, org_id: int, run_id: int, client: GraphClient, report: Progress) -> RefreshResult:
    read = _read(ctx, org_id, run_id, client, report)
    if read.rest is not None and read.result.delta_items == 0:
        done = _at_rest(ctx, org_id, run_id, read, report)
        if done is not None:
            return done
    result, graph_filter, digest, basis = read.snapshot(), read.graph_filter, read.digest, read.rest
    del read
    people_read = len(result.snapshot.users)
    report("planning", {"people_read": people_read})
    _set_progress(ctx, run_id, "planning", people_read=people_read)
    now = ctx.now()
    sync_actor = Actor(label=f"sync run {run_id}", run_id=run_id)
    with ctx.write() as uow:
        # Lock the directory for the plan and (maybe) its apply: no hand edit can slip in between.
        uow.orgs.lock(org_id)
        if not refresh_jobs.holds(uow, ctx, run_id):
            # Swept as dead while stalled: another refresh may own the org now. Change nothing.
            raise ConflictError("This refresh took longer than its lease and was stopped; nothing was changed.")
        settings = uow.settings.load(org_id)
        if stored_mapping_digest(settings) != digest:
            raise ConflictError(
                "The attribute mapping changed while Entra was read; nothing was changed. Refresh again."
            )
        base_version = uow.orgs.version(org_id)
        overrides = uow.overrides.load(org_id)
        new_link = result.delta_link
        inputs = _inputs(uow, org_id, settings, base_version, result, overrides) if new_link else None
        # A small delta round on a directory at rest: only the people it can affect (services.neighbourhood).
        around = neighbourhood.plan(uow, org_id, result, settings, overrides, basis, inputs)
        planned: dict[str, int] = {}
        if around is not None:
            the_plan, planned["people_planned"] = around
        else:
            people = uow.people.load_records(org_id, share=result.snapshot.users)  # shares at-rest values
            the_plan = make_plan(result.snapshot, people, settings.scope(), overrides)
            del people
        # Keep what the rest of the run needs, then let the snapshot go before storing and applying
        # the plan: at 100,000 users that is ~100 MB (§9 peak memory).
        link_only = result.unchanged and new_link is not None
        cursor_blob, patch = _mirror_write(uow, org_id, result) if not link_only else (None, None)
        requests, read_mode = result.requests, result.mode
        del result
        uow.runs.supersede_pending(org_id, except_run=run_id)  # a newer refresh replaces a waiting plan
        counts = rest_counts(the_plan)
        if not the_plan.changes:
            outcome, plan_state = RunOutcome.NO_CHANGES, PlanState.NONE
        elif the_plan.held:
            outcome, plan_state = RunOutcome.HELD, PlanState.PENDING
        elif settings.mode == Mode.MANUAL.value:
            outcome, plan_state = RunOutcome.AWAITING_REVIEW, PlanState.PENDING
        else:
            outcome, plan_state = RunOutcome.APPLIED, PlanState.APPLIED
        # Auto-sync applies every change at once: store them already accepted and applied (what a
        # pending store followed by an apply with no rejections leaves) and apply from memory.
        uow.expect_rows(len(the_plan.changes) * (4 if outcome is RunOutcome.APPLIED else 1))
        uow.plans.store(org_id, run_id, the_plan, accept=outcome is RunOutcome.APPLIED)
        version = base_version
        if outcome is RunOutcome.APPLIED:
            report("applying", {"changes": len(the_plan.changes)})
            version = uow.orgs.bump_version(org_id)
            uow.directory.apply(org_id, the_plan.changes, sync_actor, now, version=version)
        hold_reason = the_plan.hold_reason
        at_rest = None
        if inputs is not None and outcome in (RunOutcome.NO_CHANGES, RunOutcome.APPLIED):
            rest_counts_ = counts_at_rest(the_plan, applied=outcome is RunOutcome.APPLIED)
            if rest_counts_ is not None:
                at_rest = Rest(run_id, replace(inputs, version=version), rest_counts_, users=people_read)
        del the_plan
        if link_only and new_link is not None:
            uow.sync_state.write_link(org_id, new_link, now, at_rest)
        elif patch is not None and new_link:
            uow.sync_state.write_patch(org_id, patch[0], patch[1], now, new_link, at_rest)
        else:
            uow.sync_state.write(org_id, cursor_blob, graph_filter, now, new_link, at_rest, digest)
        uow.runs.update(
            run_id, outcome=outcome.value, plan_state=plan_state.value, finished_at=ctx.now(), counts=counts,
            graph_requests=requests, read_mode=read_mode, hold_reason=hold_reason, base_version=base_version,
            progress={"phase": "done", "people_read": people_read, **planned},
        )  # fmt: skip
        uow.connections.record_error(org_id, None)
        notifications.on_refresh(uow, org_id, run_id, outcome, counts, now, hold_reason=hold_reason, settings=settings)
    report("done", {"outcome": outcome.value})
    return RefreshResult(run_id=run_id, outcome=outcome.value, counts=counts, graph_requests=requests,
                         read_mode=read_mode, hold_reason=hold_reason)  # fmt: skip
