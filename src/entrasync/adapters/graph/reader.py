"""Read Entra ID through Graph into an :class:`EntraSnapshot` (full listing or one delta round).

Full read (first run, Graph filter on, or delta token refused):

- users: ``GET /users?$select=<GRAPH_USER_SELECT>&$expand=manager($select=id)&$top=999[&$filter=...]``.
  ``$expand`` is *not* supported together with advanced queries
  (https://learn.microsoft.com/graph/aad-advanced-queries, note under "Query scenarios..."). So when the
  filter needs an advanced query the filtered listing goes without ``$expand`` and the managers come
  from the unfiltered ``$select=id&$expand=manager($select=id)`` listing we make anyway for ``all_ids``.
- ``all_ids`` (Graph filter on only): ``GET /users?$select=id&$top=999``.
- soft-deleted: ``GET /directory/deletedItems/microsoft.graph.user?$select=id&$top=999``.
- group filter: ``GET /groups/{id}/transitiveMembers/microsoft.graph.user?$select=id&$top=999`` per group,
  sent as an advanced query because the OData cast on transitive members requires ConsistencyLevel and
  ``$count`` (https://learn.microsoft.com/graph/api/group-list-transitivemembers, "Request headers").

Delta (no Graph filter; delta cannot filter users except by id,
https://learn.microsoft.com/graph/api/user-delta): the first full read also takes a delta link with
``$deltatoken=latest`` ("sync from now", supported for directory resources such as users:
https://learn.microsoft.com/graph/delta-query-overview) *before* the listing, so changes made while
listing are replayed next run (merging is idempotent). Later runs make one delta round on that link and
merge it into the previous mirror of all users. Manager changes are tracked by selecting the ``manager``
navigation property: for users and groups delta "``$expand`` isn't supported" and "``$select`` also
supports manager and members navigation properties" (delta-query-overview, query parameter
restrictions); changes arrive as ``manager@delta``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal
from urllib.parse import quote

from entrasync.adapters.graph.client import GraphClient
from entrasync.adapters.graph.errors import (
    DeltaTokenExpiredError,
    GraphBadRequestError,
)
from entrasync.adapters.graph.mapping import (
    DEFAULT_MAPPER,
    USER_TYPE,
    UserMapper,
    apply_delta,
    manager_id_of,
    mapper_for,
    merge_delta_user,
    user_from_graph,
)
from entrasync.domain.fields import GRAPH_USER_SELECT
from entrasync.domain.graph_filter import needs_advanced_query
from entrasync.domain.model import EntraSnapshot, EntraUser

log = logging.getLogger(__name__)

USER_SELECT = ",".join(GRAPH_USER_SELECT)
MANAGER_EXPAND = "manager($select=id)"
PAGE_SIZE = 999  # Graph's maximum $top for directory objects

Progress = Callable[[int], None]


@dataclass(slots=True)
class DeltaCursor:
    """What the next run needs for a delta round: the link and the mirror it applies to.

    ``users`` mirrors every live user of the tenant (only kept when no Graph filter is on);
    ``soft_deleted_ids`` the users in ``/directory/deletedItems``.
    """

    delta_link: str
    users: dict[str, EntraUser] = field(default_factory=dict)
    soft_deleted_ids: set[str] = field(default_factory=set)


@dataclass(slots=True)
class StoredCursor:
    """A stored delta link whose mirror is loaded only when a delta round brings a change (or the caller
    asks for the snapshot): an unchanged round then costs no decoding of 100,000 users."""

    delta_link: str
    load: Callable[[], DeltaCursor | None]


class FetchResult:
    """What one fetch read. After an empty delta round on a :class:`StoredCursor` the snapshot and the new
    cursor are built from the stored mirror on first access (``snapshot``, ``cursor``), so a refresh that
    proves nothing changed never decodes the mirror."""

    def __init__(
        self,
        snapshot: EntraSnapshot | None,
        cursor: DeltaCursor | None,
        mode: Literal["full", "delta"],
        requests: int,
        *,
        delta_items: int | None = None,
        soft_deleted_ids: frozenset[str] = frozenset(),
        group_member_ids: frozenset[str] | None = None,
        stored_soft: frozenset[str] | None = None,
        link: str | None = None,
        load: Callable[[], DeltaCursor | None] | None = None,
        previous: Mapping[str, EntraUser | None] | None = None,
    ) -> None:
        self._snapshot, self._cursor, self.mode, self.requests = snapshot, cursor, mode, requests
        self.delta_items = delta_items  # items the delta round brought (None: a full read)
        # A delta round: each user it touched -> their mirror version before it (None: new to the mirror).
        self.previous = previous
        self.soft_deleted_ids = snapshot.soft_deleted_ids if snapshot is not None else soft_deleted_ids
        self.group_member_ids = snapshot.group_member_ids if snapshot is not None else group_member_ids
        self._stored_soft, self._link, self._load = stored_soft, link, load

    def _materialise(self) -> None:
        if self._snapshot is not None or self._load is None:
            return
        base = self._load()
        if base is None:  # the mirror went unreadable under us: the caller reads everything again
            raise DeltaTokenExpiredError(410, "mirrorUnreadable", "The stored mirror of Entra could not be read.")
        self._snapshot = EntraSnapshot(users=MappingProxyType(base.users), soft_deleted_ids=self.soft_deleted_ids,
                                       all_ids=None, group_member_ids=self.group_member_ids)  # fmt: skip
        self._cursor = DeltaCursor(self._link or base.delta_link, base.users, set(self.soft_deleted_ids))
        self._stored_soft = frozenset(base.soft_deleted_ids)

    @property
    def snapshot(self) -> EntraSnapshot:
        self._materialise()
        assert self._snapshot is not None
        return self._snapshot

    @property
    def cursor(self) -> DeltaCursor | None:
        self._materialise()
        return self._cursor

    @property
    def delta_link(self) -> str | None:
        if self._link is not None:
            return self._link
        return self._cursor.delta_link if self._cursor is not None else None

    @property
    def stored_soft_deleted(self) -> frozenset[str] | None:
        """The soft-deleted users the stored mirror knew (a delta round only)."""
        self._materialise()
        return self._stored_soft

    @property
    def unchanged(self) -> bool:
        """A delta round that brought no change at all (no items, same soft-deleted users): the mirror is
        the previous one and only the delta link moved on."""
        if self.delta_items != 0:
            return False
        self._materialise()
        return self._stored_soft == self.soft_deleted_ids


# -- reads ------------------------------------------------------------------------------------------


def _list_ids(client: GraphClient, path: str, *, advanced: bool = False) -> set[str]:
    ids: set[str] = set()
    for page in client.iter_pages(path, {"$select": "id", "$top": PAGE_SIZE}, advanced=advanced):
        for item in page:
            odata_type = item.get("@odata.type")
            if odata_type is None or odata_type == USER_TYPE:
                ids.add(item["id"])
    return ids


def _soft_deleted_ids(client: GraphClient) -> set[str]:
    # https://learn.microsoft.com/graph/api/directory-deleteditems-list (cast to microsoft.graph.user)
    return _list_ids(client, "/directory/deletedItems/microsoft.graph.user")


def _group_member_ids(client: GraphClient, group_ids: Sequence[str]) -> frozenset[str]:
    members: set[str] = set()
    for gid in group_ids:
        path = f"/groups/{quote(gid, safe='')}/transitiveMembers/microsoft.graph.user"
        try:
            members |= _list_ids(client, path, advanced=True)
        except GraphBadRequestError as exc:
            if exc.status == 404:
                raise GraphBadRequestError(
                    404,
                    exc.code,
                    f"The group {gid} in the group filter does not exist (any more): {exc.message}",
                    request_id=exc.request_id,
                ) from None
            raise
    return frozenset(members)


def _latest_delta_link(client: GraphClient, mapper: UserMapper = DEFAULT_MAPPER) -> str | None:
    """A deltaLink for "now" without enumerating users (``$deltatoken=latest``)."""
    params = {"$select": ",".join((*mapper.select, "manager")), "$deltatoken": "latest"}
    try:
        page = client.get("/users/delta", params)
    except GraphBadRequestError as exc:
        # Not fatal: without a cursor the next run is simply another full read.
        log.warning("could not start delta tracking (%s); the next refresh reads everything again", exc)
        return None
    link = page.get("@odata.deltaLink")
    if isinstance(link, str) and link:
        client.check_origin(link)
        return link
    # Some servers answer "latest" with a nextLink chain; follow it to the deltaLink (no items expected).
    next_link = page.get("@odata.nextLink")
    if isinstance(next_link, str):
        _, link = client.delta(next_link)
        return link or None
    return None


def _list_users(
    client: GraphClient,
    graph_filter: str | None,
    *,
    advanced: bool,
    expand_manager: bool,
    managers: Mapping[str, str | None] | None,
    on_progress: Progress | None,
    mapper: UserMapper = DEFAULT_MAPPER,
) -> dict[str, EntraUser]:
    params: dict[str, str | int | bool] = {"$select": ",".join(mapper.select)}
    user_from_graph = mapper.user_from_graph
    if expand_manager:
        params["$expand"] = MANAGER_EXPAND
    params["$top"] = PAGE_SIZE
    if graph_filter:
        params["$filter"] = graph_filter
    users: dict[str, EntraUser] = {}
    # Pages come decoded into checked rows (typed_pages) unless a value needs the field-by-field path.
    for page in client.iter_pages("/users", params, advanced=advanced, decode=mapper.page_decoder):
        to_user = user_from_graph if not page or page[0].__class__ is dict else mapper.user_from_row
        if managers is None:
            for d in page:
                u = to_user(d)
                users[u.id] = u
        else:
            for d in page:
                u = to_user(d, managers.get(d["id"] if d.__class__ is dict else d.id))
                users[u.id] = u
        if on_progress is not None:
            on_progress(len(users))
    return users


def _full_read(
    client: GraphClient,
    graph_filter: str | None,
    group_ids: Sequence[str] | None,
    on_progress: Progress | None,
    mapper: UserMapper = DEFAULT_MAPPER,
) -> tuple[EntraSnapshot, DeltaCursor | None]:
    graph_filter = (graph_filter or "").strip() or None
    delta_link = _latest_delta_link(client, mapper) if graph_filter is None else None

    all_ids: frozenset[str] | None = None
    if graph_filter is None:
        users = _list_users(client, None, advanced=False, expand_manager=True, managers=None, on_progress=on_progress,
                            mapper=mapper)  # fmt: skip
    elif needs_advanced_query(graph_filter):
        # $expand is not allowed with advanced queries: take managers from the unfiltered id listing.
        managers: dict[str, str | None] = {}
        params: dict[str, str | int | bool] = {
            "$select": "id",
            "$expand": MANAGER_EXPAND,
            "$top": PAGE_SIZE,
        }
        for page in client.iter_pages("/users", params):
            for d in page:
                managers[d["id"]] = manager_id_of(d.get("manager"))
        all_ids = frozenset(managers)
        users = _list_users(
            client,
            graph_filter,
            advanced=True,
            expand_manager=False,
            managers=managers,
            on_progress=on_progress,
            mapper=mapper,
        )
    else:
        users = _list_users(
            client, graph_filter, advanced=False, expand_manager=True, managers=None, on_progress=on_progress,
            mapper=mapper,
        )  # fmt: skip
        all_ids = frozenset(_list_ids(client, "/users"))

    soft_deleted = _soft_deleted_ids(client)
    groups = _group_member_ids(client, group_ids) if group_ids is not None else None
    snapshot = EntraSnapshot(
        users=MappingProxyType(users),
        soft_deleted_ids=frozenset(soft_deleted),
        all_ids=all_ids,
        group_member_ids=groups,
    )
    cursor = DeltaCursor(delta_link, users, soft_deleted) if delta_link else None
    return snapshot, cursor


def _delta_read(
    client: GraphClient,
    delta_link: str,
    load: Callable[[], DeltaCursor | None],
    group_ids: Sequence[str] | None,
    on_progress: Progress | None,
    mapper: UserMapper = DEFAULT_MAPPER,
) -> FetchResult:
    """One delta round. The mirror is loaded (``load``) at the first page that brings a change; a round
    that brings none leaves it unloaded."""
    users: dict[str, EntraUser] | None = None
    stored_soft: frozenset[str] | None = None
    previous: dict[str, EntraUser | None] = {}
    soft: set[str] = set()
    new_link = ""
    seen = 0
    start = client.request_count
    for page, link in client.iter_delta_pages(delta_link):
        if page:
            if users is None:
                base = load()
                if base is None:
                    raise DeltaTokenExpiredError(410, "mirrorUnreadable", "The stored mirror could not be read.")
                users, stored_soft = dict(base.users), frozenset(base.soft_deleted_ids)
                soft.update(base.soft_deleted_ids)
            for item in page:
                uid = item.get("id")
                if isinstance(uid, str) and uid not in previous:
                    previous[uid] = users.get(uid)
            mapper.apply_delta(users, soft, page)
        seen += len(page)
        if on_progress is not None:
            on_progress(seen)
        if link is not None:
            new_link = link
    # deletedItems is small and authoritative (restores, purges, 30-day expiry): read it every run.
    soft_now = frozenset(_soft_deleted_ids(client))
    groups = _group_member_ids(client, group_ids) if group_ids is not None else None
    requests = client.request_count - start
    if users is None:
        return FetchResult(None, None, "delta", requests, delta_items=0, soft_deleted_ids=soft_now,
                           group_member_ids=groups, link=new_link, load=load, previous={})  # fmt: skip
    snapshot = EntraSnapshot(users=MappingProxyType(users), soft_deleted_ids=soft_now, all_ids=None,
                             group_member_ids=groups)  # fmt: skip
    return FetchResult(snapshot, DeltaCursor(new_link, users, set(soft_now)), "delta", requests, delta_items=seen,
                       stored_soft=stored_soft, previous=previous)  # fmt: skip


def _given(cursor: DeltaCursor) -> Callable[[], DeltaCursor | None]:
    return lambda: cursor


def fetch_snapshot(
    client: GraphClient,
    *,
    graph_filter: str | None,
    group_ids: Sequence[str] | None,
    cursor: DeltaCursor | StoredCursor | None,
    on_progress: Progress | None = None,
    mapper: UserMapper = DEFAULT_MAPPER,
) -> FetchResult:
    """Read Entra into a complete snapshot, or raise. Never returns a partial snapshot.

    With a ``cursor`` and no Graph filter: one delta round; a refused token (expired,
    ``syncStateNotFound``, 410) falls back to a full read. Otherwise a full read. ``cursor`` in the
    result is what to pass next time (``None`` when a Graph filter is on: delta cannot filter).
    A :class:`StoredCursor`'s mirror is loaded only when the round brings a change or the snapshot is used.
    """
    start = client.request_count
    graph_filter = (graph_filter or "").strip() or None
    if cursor is not None and cursor.delta_link and not client.same_origin(cursor.delta_link):
        # Stored for another Graph host (ENTRASYNC_GRAPH_URL changed, a restarted demo's emulator on a new
        # port): the token is never sent there, and the link is of no use here. A full read, not a
        # refresh that fails at every run.
        log.info("the stored delta link is for another Graph host; reading everything")
        cursor = None
    if cursor is not None and graph_filter is None and cursor.delta_link:
        load = cursor.load if isinstance(cursor, StoredCursor) else _given(cursor)
        try:
            result = _delta_read(client, cursor.delta_link, load, group_ids, on_progress, mapper)
            result.requests = client.request_count - start
            return result
        except DeltaTokenExpiredError as exc:
            log.info("delta token refused (%s); falling back to a full read", exc.code)
    snapshot, full_cursor = _full_read(client, graph_filter, group_ids, on_progress, mapper)
    return FetchResult(snapshot, full_cursor, "full", client.request_count - start)


# -- settings dialog helpers ------------------------------------------------------------------


def count_users(client: GraphClient, graph_filter: str | None) -> int:
    """How many users match ``graph_filter`` ("N users match" in Sync Settings).

    Uses ``$count=true`` with ``ConsistencyLevel: eventual`` (counting directory objects is only
    supported with advanced query parameters: https://learn.microsoft.com/graph/aad-advanced-queries,
    "Error handling"). Graph's own 400 (e.g. an unsupported filter) surfaces as
    :class:`GraphBadRequestError` carrying Graph's message.
    """
    params: dict[str, str | int | bool] = {"$select": "id", "$top": 1, "$count": "true"}
    graph_filter = (graph_filter or "").strip()
    if graph_filter:
        params["$filter"] = graph_filter
    first = client.get("/users", params, advanced=True, require_value=True)
    count = first.get("@odata.count")
    if isinstance(count, int) and not isinstance(count, bool):
        return count
    # No count in the answer: count the ids ourselves, in full pages.
    params["$top"] = PAGE_SIZE
    return sum(len(page) for page in client.iter_pages("/users", params, advanced=True))


def count_users_in_groups(client: GraphClient, graph_filter: str | None, group_ids: Sequence[str]) -> int:
    """How many users are transitive members of the groups and (when given) match the Graph filter: the
    "N users match" of a Save with the Group filter on. Reads the members' ids and, with a filter, the
    filtered ids ($select=id pages): a few requests per thousand users."""
    members = set(_group_member_ids(client, group_ids))
    flt = (graph_filter or "").strip()
    if not flt or not members:
        return len(members)
    params: dict[str, str | int | bool] = {"$select": "id", "$top": PAGE_SIZE, "$filter": flt}
    matching = 0
    for page in client.iter_pages("/users", params, advanced=needs_advanced_query(flt)):
        matching += sum(1 for d in page if d.get("id") in members)
    return matching


def probe_select(client: GraphClient, properties: Sequence[str]) -> None:
    """Whether Graph can ``$select`` these user properties: ``GET /users?$select=id,...&$top=1``. Graph
    answers 400 for a property the user type does not have (an unknown directory extension included);
    that refusal surfaces as :class:`GraphBadRequestError` carrying Graph's message."""
    client.get("/users", {"$select": ",".join(("id", *properties)), "$top": 1})


def check_groups(client: GraphClient, ids: Sequence[str]) -> list[str]:
    """The ids (in input order) that are not existing groups. 404 (or a malformed id) -> missing."""
    missing: list[str] = []
    for gid in ids:
        try:
            client.get(f"/groups/{quote(gid, safe='')}", {"$select": "id"})
        except GraphBadRequestError as exc:
            if exc.status in (400, 404):
                missing.append(gid)
                continue
            raise
    return missing


__all__ = [
    "DEFAULT_MAPPER",
    "MANAGER_EXPAND",
    "USER_SELECT",
    "DeltaCursor",
    "FetchResult",
    "StoredCursor",
    "UserMapper",
    "apply_delta",
    "check_groups",
    "count_users",
    "count_users_in_groups",
    "fetch_snapshot",
    "mapper_for",
    "merge_delta_user",
    "probe_select",
    "user_from_graph",
]
