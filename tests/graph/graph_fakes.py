"""Helpers for the Graph adapter tests: a fake clock, a token stub and an in-memory Graph."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from entrasync.adapters.graph.client import GraphClient, GraphConfig

BASE = "https://graph.test"
API = f"{BASE}/v1.0"
TOKEN = "tok-SECRET-abc123"


class FakeClock:
    """Monotonic clock + sleep that records requested sleeps and advances time instead of waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class StubToken:
    """Token provider stub: counts calls and invalidations; a new token after each invalidate."""

    def __init__(self) -> None:
        self.calls = 0
        self.invalidations = 0

    def __call__(self) -> str:
        self.calls += 1
        return f"{TOKEN}-{self.invalidations}"

    def invalidate(self) -> None:
        self.invalidations += 1


def graph_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {"date": "2024-01-01T00:00:00", "request-id": "rid-1", "client-request-id": "c"},
        }
    }
    return httpx.Response(status, json=body, headers=headers or {})


@dataclass
class Harness:
    client: GraphClient
    clock: FakeClock
    token: StubToken
    requests: list[httpx.Request] = field(default_factory=list)


def make_client(
    handler: Callable[[httpx.Request], httpx.Response],
    *,
    max_attempts: int = 10,
    max_retry_seconds: float = 120.0,
    rng: float = 0.5,
) -> Harness:
    clock = FakeClock()
    token = StubToken()
    seen: list[httpx.Request] = []

    def recording(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    cfg = GraphConfig(
        graph_url=BASE,
        login_url="https://login.test",
        tenant_id="t",
        client_id="c",
        client_credential="s3cret",
        ca_bundle=None,
        max_attempts=max_attempts,
        max_retry_seconds=max_retry_seconds,
    )
    client = GraphClient(
        cfg,
        token_provider=token,
        transport=httpx.MockTransport(recording),
        sleep=clock.sleep,
        clock=clock.clock,
        rng=lambda: rng,
    )
    return Harness(client, clock, token, seen)


def query(request: httpx.Request) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(str(request.url)).query, keep_blank_values=True))


# -- an in-memory Graph for reader tests ------------------------------------------------------------


def guid(n: int) -> str:
    return f"00000000-0000-0000-0000-{n:012d}"


@dataclass
class FakeGraph:
    """Just enough of Graph v1.0 for the reader: paged listings, $select, $expand=manager, a simple
    ``department eq`` / ``endsWith(mail, ...)`` filter, deletedItems, transitive members and delta."""

    users: list[dict[str, Any]] = field(default_factory=list)
    contacts: set[str] = field(default_factory=set)  # ids of orgContacts that may be managers
    deleted: list[str] = field(default_factory=list)
    groups: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # gid -> [(type, id)]
    page_size: int = 2
    delta_pages: list[dict[str, Any]] = field(default_factory=list)  # scripted answers to delta links
    delta_error: httpx.Response | None = None
    log: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.log.append(request)
        path = request.url.path
        q = query(request)
        if path == "/v1.0/users/delta":
            return self._delta(q)
        if path == "/v1.0/users":
            return self._users(request, q)
        if path == "/v1.0/directory/deletedItems/microsoft.graph.user":
            return self._page([{"id": i} for i in self.deleted], q, path)
        if path.startswith("/v1.0/groups/"):
            parts = path.split("/")
            gid = parts[3]
            if gid not in self.groups:
                return graph_error(404, "Request_ResourceNotFound", f"Resource '{gid}' does not exist.")
            if len(parts) == 4:
                return httpx.Response(200, json={"id": gid})
            if request.headers.get("ConsistencyLevel") != "eventual":
                return graph_error(400, "Request_UnsupportedQuery", "cast needs ConsistencyLevel")
            members = [
                {"@odata.type": "#microsoft.graph.user", "id": mid} for kind, mid in self.groups[gid] if kind == "user"
            ]
            return self._page(members, q, path)
        return graph_error(404, "Request_ResourceNotFound", "nope")

    def _project(self, u: dict[str, Any], q: dict[str, str]) -> dict[str, Any]:
        select = q.get("$select", "").split(",")
        out = {k: u.get(k) for k in select if k and k != "manager"}
        out["id"] = u["id"]
        if q.get("$expand") == "manager($select=id)":
            mid = u.get("manager")
            if mid in self.contacts:
                out["manager"] = {"@odata.type": "#microsoft.graph.orgContact", "id": mid}
            elif mid:
                out["manager"] = {"@odata.type": "#microsoft.graph.user", "id": mid}
            else:
                out["manager"] = None
        return out

    def _users(self, request: httpx.Request, q: dict[str, str]) -> httpx.Response:
        rows = self.users
        flt = q.get("$filter")
        advanced = request.headers.get("ConsistencyLevel") == "eventual"
        if flt:
            if flt.startswith("endsWith("):
                if not (advanced and q.get("$count") == "true"):
                    return graph_error(400, "Request_UnsupportedQuery", "Unsupported Query.")
                suffix = flt.split("'")[1]
                rows = [u for u in rows if (u.get("mail") or "").endswith(suffix)]
            elif flt.startswith("department eq "):
                dept = flt.split("'")[1]
                rows = [u for u in rows if u.get("department") == dept]
            else:
                return graph_error(400, "Request_BadRequest", f"Invalid filter clause: {flt}")
        if "$expand" in q and advanced:
            return graph_error(400, "Request_UnsupportedQuery", "$expand is not supported with advanced queries")
        return self._page([self._project(u, q) for u in rows], q, "/v1.0/users", count=advanced)

    def _page(self, rows: list[dict[str, Any]], q: dict[str, str], path: str, count: bool = False) -> httpx.Response:
        start = int(q.get("$skiptoken", "0"))
        chunk = rows[start : start + self.page_size]
        body: dict[str, Any] = {"value": chunk}
        if count:
            body["@odata.count"] = len(rows)
        if start + self.page_size < len(rows):
            keep = {k: v for k, v in q.items() if k != "$skiptoken"}
            keep["$skiptoken"] = str(start + self.page_size)
            qs = "&".join(f"{k}={v}" for k, v in keep.items())
            body["@odata.nextLink"] = f"{API}{path[len('/v1.0') :]}?{qs}"
        return httpx.Response(200, content=json.dumps(body).encode())

    def _delta(self, q: dict[str, str]) -> httpx.Response:
        if q.get("$deltatoken") == "latest":
            return httpx.Response(200, json={"value": [], "@odata.deltaLink": f"{API}/users/delta?$deltatoken=D0"})
        if self.delta_error is not None:
            return self.delta_error
        token = q.get("$deltatoken") or q.get("$skiptoken") or ""
        idx = int(token[1:]) if token[1:].isdigit() else 0
        page = self.delta_pages[idx]
        return httpx.Response(200, json=page)


def sample_graph() -> FakeGraph:
    """Four users (one disabled, one guest managed by an orgContact), a deleted user, one group."""
    users: list[dict[str, Any]] = [
        {
            "id": guid(1),
            "userPrincipalName": "ceo@contoso.test",
            "mail": "ceo@contoso.test",
            "displayName": "Chief",
            "givenName": "C",
            "surname": "Eo",
            "jobTitle": "CEO",
            "employeeId": "1",
            "officeLocation": "HQ",
            "department": "Exec",
            "accountEnabled": True,
            "userType": "Member",
            "manager": None,
        },
        {
            "id": guid(2),
            "userPrincipalName": "ann@contoso.test",
            "mail": None,
            "displayName": "Ann Ångström",
            "department": "Sales",
            "accountEnabled": True,
            "userType": "Member",
            "manager": guid(1),
        },
        {
            "id": guid(3),
            "userPrincipalName": "bob@contoso.test",
            "mail": "bob@fabrikam.test",
            "displayName": "Bob",
            "department": "Sales",
            "accountEnabled": False,
            "userType": "Member",
            "manager": guid(2),
        },
        {
            "id": guid(4),
            "userPrincipalName": "guest#EXT#@contoso.test",
            "mail": "guest@fabrikam.test",
            "displayName": "Guest",
            "department": None,
            "accountEnabled": True,
            "userType": "Guest",
            "manager": guid(900),
        },
    ]
    return FakeGraph(
        users=users,
        contacts={guid(900)},
        deleted=[guid(50)],
        groups={guid(70): [("user", guid(2)), ("group", guid(71)), ("user", guid(3))]},
    )
