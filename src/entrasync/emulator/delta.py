"""Delta query for users and groups, replayed from the tenant's change log.

Rules (https://learn.microsoft.com/graph/delta-query-overview, .../delta-query-users,
.../api/user-delta, .../api/group-delta):
- query options only on the first request, encoded into the state tokens;
- pages sized by the server (``$top``/``$orderby`` are not supported for users and groups);
- every round ends with an ``@odata.deltaLink`` (even when nothing changed);
- ``$deltatoken=latest`` gives an empty page and a deltaLink ("sync from now");
- removed objects: ``{"id", "@removed": {"reason": "changed"}}`` (restorable) or ``"deleted"``;
- relationships as ``manager@delta`` / ``members@delta`` annotations;
- an expired token answers 400 ``syncStateNotFound`` or 410 with a ``Location`` for a full resync;
- a complex property (``onPremisesExtensionAttributes``) that changed comes back whole.
Tokens are bound to their tenant: another tenant's token cannot read them (``syncStateNotFound``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from entrasync.emulator.errors import GraphError, json_response
from entrasync.emulator.graph_query import Ctx, no_such_property, parse_user_select
from entrasync.emulator.odata_filter import FilterError
from entrasync.emulator.paging import BadToken, TokenCodec
from entrasync.emulator.state import EmulatorState
from entrasync.emulator.store import (
    DEFAULT_USER_SELECT,
    GROUP_PROPERTIES,
    GROUP_PROPERTY_BY_LOWER,
    Group,
    User,
)

if TYPE_CHECKING:
    from entrasync.emulator.graph_query import Query

TOKEN_TTL_SECONDS = 7 * 24 * 3600  # "For directory objects, the limit is seven days."
USER_T = "#microsoft.graph.user"


class DeltaEngine:
    def __init__(self, state: EmulatorState, codec: TokenCodec) -> None:
        self.state = state
        self.codec = codec
        # The folded change log of recent rounds: every page of a round folds the same log range
        # (s, t], and refolding it per page made a 15,000-change round quadratic.
        self._folded: dict[tuple[Any, ...], list[tuple[str, dict[str, Any]]]] = {}

    # -- request handling ------------------------------------------------------------------------
    def handle(self, request: Request, q: Query, kind: str, ctx: Ctx) -> Response:
        skip = q.get("$skiptoken")
        delta = q.get("$deltatoken")
        if skip:
            st = self._decode(skip, kind, ctx)
        elif delta and delta.lower() != "latest":
            st = self._decode(delta, kind, ctx)
            st = {**st, "ph": "chg", "t": ctx.tenant.seq, "off": 0}
        else:
            st = self._initial(q, kind, ctx)
            if delta and delta.lower() == "latest":
                return self._finish(request, kind, st, [], ctx.tenant.seq)
        if st["ph"] == "init":
            return self._initial_page(request, kind, st, ctx)
        return self._changes_page(request, q, kind, st, ctx)

    def _initial(self, q: Query, kind: str, ctx: Ctx) -> dict[str, Any]:
        for opt in ("$top", "$orderby", "$search", "$count"):
            if q.get(opt) is not None:
                # delta-query-overview: "$top is not supported", "$orderby is not supported" for users/groups
                raise GraphError(400, "Request_UnsupportedQuery", "Unsupported Query.")
        nav = "manager" if kind == "users" else "members"
        sel_raw = q.get("$select")
        select: list[str] | None = None
        track_nav = kind == "groups" and not sel_raw  # group delta tracks members by default
        if sel_raw and kind == "users":
            select = parse_user_select(sel_raw, ctx.tenant, extra=(nav,))
            if select is not None and nav in select:
                track_nav = True
                select.remove(nav)
        elif sel_raw:
            select = ["id"]
            for part in sel_raw.split(","):
                name = part.strip()
                if name.lower() == nav:
                    track_nav = True
                    continue
                prop = GROUP_PROPERTY_BY_LOWER.get(name.lower())
                if prop is None:
                    raise no_such_property(name, "group")
                if prop not in select:
                    select.append(prop)
        expand = q.get("$expand")
        if expand:
            if (kind == "users" and expand.strip().lower().startswith("manager")) or (
                kind == "groups" and expand.strip().lower().startswith("members")
            ):
                track_nav = True
            else:
                raise GraphError(400, "Request_UnsupportedQuery", "Unsupported Query.")
        ids: list[str] | None = None
        flt = q.get("$filter")
        if flt:
            ids = _id_filter(flt)
        if select is None:
            select = list(DEFAULT_USER_SELECT) if kind == "users" else list(GROUP_PROPERTIES)
        params = {k: v for k, v in q.params.items() if k in ("$select", "$expand", "$filter")}
        return {
            "k": kind,
            "ph": "init",
            "sel": select,
            "nav": track_nav,
            "ids": ids,
            "p": params,
            "s": ctx.tenant.seq,
            "e": ctx.tenant.delta_epoch,
            "tid": ctx.ts.tenant_id,
            "iat": int(time.time()),
            "after": "",
        }

    def _decode(self, token: str, kind: str, ctx: Ctx) -> dict[str, Any]:
        try:
            st = self.codec.decode(token)
        except BadToken:
            st = {}
        if st.get("k") != kind or st.get("tid") != ctx.ts.tenant_id:
            raise self._expired(kind, {}, ctx)
        expired = st.get("e") != ctx.tenant.delta_epoch or time.time() - st.get("iat", 0) > TOKEN_TTL_SECONDS
        if expired:
            raise self._expired(kind, st, ctx)
        return st

    def _expired(self, kind: str, st: dict[str, Any], ctx: Ctx) -> GraphError:
        if ctx.ts.delta_expiry_mode == "410" and st:
            params = dict(st.get("p") or {})
            query = "&".join(f"{k}={quote(v, safe='$,()')}" for k, v in params.items())
            location = f"{self.state.graph_root}/{kind}/delta?" + (query + "&" if query else "") + "$deltatoken="
            # delta-query-overview "Synchronization reset": 410 + Location with an empty $deltaToken
            return GraphError(
                410,
                "resyncRequired",
                "The delta token is no longer valid; the application must restart with a full synchronization.",
                {"Location": location},
            )
        return GraphError(
            400,
            "syncStateNotFound",
            "The sync state generation is not found. The delta token is expired and data must be synchronized again.",
        )

    # -- pages -----------------------------------------------------------------------------------
    def _initial_page(self, request: Request, kind: str, st: dict[str, Any], ctx: Ctx) -> Response:
        tenant = ctx.tenant
        size = ctx.ts.delta_page_size
        rows: list[dict[str, Any]] = []
        if kind == "users":
            import bisect

            order = tenant.order
            i = bisect.bisect_right(order, st["after"]) if st["after"] else 0
            ids = set(st["ids"]) if st["ids"] is not None else None
            while i < len(order) and len(rows) < size:
                uid = order[i]
                i += 1
                if ids is not None and uid not in ids:
                    continue
                rows.append(self._user_full(tenant.users[uid], st, ctx))
            done = i >= len(order)
            last = order[i - 1] if i else ""
        else:
            groups = sorted(tenant.groups)
            if st["ids"] is not None:
                groups = [g for g in groups if g in set(st["ids"])]
            start = 0
            if st["after"]:
                import bisect

                start = bisect.bisect_right(groups, st["after"])
            chunk = groups[start : start + size]
            rows = [self._group_full(tenant.groups[g], st, ctx) for g in chunk]
            done = start + size >= len(groups)
            last = chunk[-1] if chunk else st["after"]
        if done:
            return self._finish(request, kind, st, rows, st["s"])
        return self._next(request, kind, {**st, "after": last}, rows)

    def _changes_page(self, request: Request, q: Query, kind: str, st: dict[str, Any], ctx: Ctx) -> Response:
        changed = self._collect(kind, st, ctx)
        off = int(st.get("off", 0))
        size = ctx.ts.delta_page_size
        chunk = changed[off : off + size]
        rows = [r for r in (self._change_row(kind, oid, info, st, q.minimal, ctx) for oid, info in chunk) if r]
        if off + size >= len(changed):
            return self._finish(request, kind, st, rows, st["t"])
        return self._next(request, kind, {**st, "off": off + size}, rows)

    def _next(self, request: Request, kind: str, st: dict[str, Any], rows: list[dict[str, Any]]) -> Response:
        body = {
            "@odata.context": f"{self.state.graph_root}/$metadata#{kind}",
            "@odata.nextLink": f"{self.state.graph_root}/{kind}/delta?$skiptoken={self.codec.encode(st)}",
            "value": rows,
        }
        return json_response(request, body)

    def _finish(
        self, request: Request, kind: str, st: dict[str, Any], rows: list[dict[str, Any]], seq: int
    ) -> Response:
        token = {k: st[k] for k in ("k", "sel", "nav", "ids", "p", "e", "tid")}
        token.update({"ph": "dl", "s": seq, "iat": int(time.time())})
        body = {
            "@odata.context": f"{self.state.graph_root}/$metadata#{kind}",
            "@odata.deltaLink": f"{self.state.graph_root}/{kind}/delta?$deltatoken={self.codec.encode(token)}",
            "value": rows,
        }
        return json_response(request, body)

    # -- representations -------------------------------------------------------------------------
    def _user_full(self, user: User, st: dict[str, Any], ctx: Ctx) -> dict[str, Any]:
        row = user.as_dict(st["sel"])
        if st["nav"] and user._manager and user._manager in ctx.tenant.users:
            row["manager@delta"] = [{"@odata.type": USER_T, "id": user._manager}]
        return row

    def _group_full(self, group: Group, st: dict[str, Any], ctx: Ctx) -> dict[str, Any]:
        row = {p: group.get(p) for p in st["sel"]}
        if st["nav"]:
            tenant = ctx.tenant
            row["members@delta"] = [
                {"@odata.type": f"#microsoft.graph.{tenant.object_type(m)}", "id": m}
                for m in tenant.live_members(group)
            ]
        return row

    def _collect(self, kind: str, st: dict[str, Any], ctx: Ctx) -> list[tuple[str, dict[str, Any]]]:
        """Fold log entries (s, t] into one record per object, in first-change order (the log is
        append-only, so a range folds the same way every time: cached per round)."""
        tenant = ctx.tenant
        key = (id(tenant), kind, st["s"], st["t"], tuple(st["ids"]) if st["ids"] is not None else None)
        hit = self._folded.get(key)
        if hit is None:
            hit = self._fold(kind, st, tenant.changes)
            if len(self._folded) >= 8:
                self._folded.pop(next(iter(self._folded)))
            self._folded[key] = hit
        return hit

    def _fold(self, kind: str, st: dict[str, Any], changes: list[Any]) -> list[tuple[str, dict[str, Any]]]:
        want = "user" if kind == "users" else "group"
        ids = set(st["ids"]) if st["ids"] is not None else None
        infos: dict[str, dict[str, Any]] = {}
        for ch in changes[st["s"] : st["t"]]:
            if ch.kind != want or (ids is not None and ch.object_id not in ids):
                continue
            info = infos.setdefault(
                ch.object_id, {"props": set(), "full": False, "old_mgr": None, "mgr": False, "members": {}}
            )
            if ch.op in ("create", "restore"):
                info["full"] = True
            elif ch.op == "update":
                info["props"].update(ch.props)
            elif ch.op == "manager":
                if not info["mgr"]:
                    info["old_mgr"] = ch.old_manager
                info["mgr"] = True
            elif ch.op == "members":
                for m in ch.added:
                    info["members"][m] = True
                for m in ch.removed:
                    info["members"][m] = False
        return list(infos.items())

    def _change_row(
        self, kind: str, oid: str, info: dict[str, Any], st: dict[str, Any], minimal: bool, ctx: Ctx
    ) -> dict[str, Any] | None:
        tenant = ctx.tenant
        if kind == "users":
            user = tenant.users.get(oid)
            if user is None:
                reason = "changed" if oid in tenant.deleted_users else "deleted"
                return {"id": oid, "@removed": {"reason": reason}}
            if info["full"]:
                return self._user_full(user, st, ctx)  # new or restored: plain object, no annotation
            tracked = [p for p in st["sel"] if p in info["props"]]
            mgr_changed = st["nav"] and info["mgr"]
            if not tracked and not mgr_changed:
                return None  # only untracked properties changed: not in this delta
            if minimal:
                row = {"id": oid, **{p: user.get(p) for p in tracked}}
            else:  # default: tracked properties with values, plus changed ones (null when cleared)
                row = {p: user.get(p) for p in st["sel"] if p in tracked or user.get(p) not in (None, [])}
                row["id"] = oid
            if mgr_changed:
                mgr = user._manager
                if mgr and mgr in tenant.users:
                    row["manager@delta"] = [{"@odata.type": USER_T, "id": mgr}]
                elif info["old_mgr"]:
                    row["manager@delta"] = [
                        {"@odata.type": USER_T, "id": info["old_mgr"], "@removed": {"reason": "deleted"}}
                    ]
                else:
                    row["manager@delta"] = []
            return row
        group = tenant.groups.get(oid)
        if group is None:
            return {"id": oid, "@removed": {"reason": "deleted"}}
        if info["full"]:
            return self._group_full(group, st, ctx)
        members = info["members"]
        if not (st["nav"] and members):
            return None
        row = {"id": oid} if minimal else {p: group.get(p) for p in st["sel"]}
        live = set(tenant.live_members(group))
        entries = []
        for m in members:
            otype = tenant.object_type(m) or "user"
            entry: dict[str, Any] = {"@odata.type": f"#microsoft.graph.{otype}", "id": m}
            if m not in live:
                entry["@removed"] = {"reason": "deleted"}
            entries.append(entry)
        row["members@delta"] = entries
        return row


def _id_filter(text: str) -> list[str]:
    """Delta supports only ``id eq '...'`` (or-ed, at most 50), per the user: delta docs."""
    import re

    clauses = re.split(r"\s+or\s+", text.strip(), flags=re.IGNORECASE)
    ids: list[str] = []
    for clause in clauses:
        m = re.fullmatch(r"\(?\s*id\s+eq\s+'([^']+)'\s*\)?", clause.strip(), flags=re.IGNORECASE)
        if m is None:
            raise GraphError(400, "Request_UnsupportedQuery", "Unsupported Query.")
        ids.append(m.group(1))
    if len(ids) > 50:
        raise GraphError(400, "Request_UnsupportedQuery", "Unsupported Query.")
    return ids


__all__ = ["DeltaEngine", "FilterError"]
