"""GraphClient against httpx.MockTransport: paging, headers, retries, error mapping."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

import httpx
import pytest
from graph_fakes import API, TOKEN, graph_error, make_client, query

from entrasync.adapters.graph.client import encode_query, parse_retry_after
from entrasync.adapters.graph.errors import (
    DeltaTokenExpiredError,
    GraphBadRequestError,
    GraphStopError,
    GraphTransientError,
)


def ok(body: Mapping[str, object]) -> httpx.Response:
    return httpx.Response(200, json=body)


# -- paging ---------------------------------------------------------------------------------------


def test_next_link_is_followed_verbatim_byte_for_byte() -> None:
    odd = f"{API}/users?$skiptoken=RFNwdAIAAQ%2BAAD8%3D~'x'(y)!*&%24top=999&$select=id,displayName"
    second = f"{API}/users?$skiptoken=X2&z=%7E%25"
    pages = {
        "/v1.0/users": {"value": [{"id": "a"}], "@odata.nextLink": odd},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        raw = request.url.raw_path
        if raw == odd.removeprefix("https://graph.test").encode():
            return ok({"value": [{"id": "b"}], "@odata.nextLink": second})
        if raw == second.removeprefix("https://graph.test").encode():
            return ok({"value": [{"id": "c"}]})
        return ok(pages[request.url.path])

    h = make_client(handler)
    got = [item["id"] for page in h.client.iter_pages("/users", {"$select": "id"}) for item in page]
    assert got == ["a", "b", "c"]
    assert [r.url.raw_path for r in h.requests[1:]] == [
        odd.removeprefix("https://graph.test").encode(),
        second.removeprefix("https://graph.test").encode(),
    ]
    assert h.client.request_count == 3


def test_first_request_encodes_query_options_readably() -> None:
    h = make_client(lambda r: ok({"value": []}))
    list(h.client.iter_pages("/users", {"$select": "id,mail", "$filter": "mail eq 'a+b@x.com'", "$top": 999}))
    raw = h.requests[0].url.raw_path.decode()
    assert raw == "/v1.0/users?$select=id,mail&$filter=mail%20eq%20'a%2Bb%40x.com'&$top=999".replace("%40", "@")
    assert query(h.requests[0])["$filter"] == "mail eq 'a+b@x.com'"


def test_encode_query_escapes_ampersand_and_hash() -> None:
    assert encode_query({"$filter": "department eq 'R&D #1'"}) == "$filter=department%20eq%20'R%26D%20%231'"
    assert encode_query({"$count": True}) == "$count=true"


def test_consistency_level_sent_on_every_page_when_advanced() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        n = int(query(request).get("$skiptoken", "0"))
        body: dict[str, object] = {"value": [{"id": str(n)}]}
        if n < 2:
            body["@odata.nextLink"] = f"{API}/users?$skiptoken={n + 1}"
        return ok(body)

    h = make_client(handler)
    pages = list(h.client.iter_pages("/users", {"$filter": "endsWith(mail,'@x.com')"}, advanced=True))
    assert len(pages) == 3
    assert [r.headers.get("ConsistencyLevel") for r in h.requests] == ["eventual"] * 3
    assert query(h.requests[0])["$count"] == "true"

    h2 = make_client(handler)
    list(h2.client.iter_pages("/users"))
    assert all("ConsistencyLevel" not in r.headers for r in h2.requests)


def test_each_attempt_has_its_own_client_request_id_and_bearer_token() -> None:
    answers = iter([httpx.Response(503), ok({"value": []})])
    h = make_client(lambda r: next(answers))
    h.client.get("/users")
    ids = [r.headers["client-request-id"] for r in h.requests]
    assert len(set(ids)) == 2
    for cid in ids:
        uuid.UUID(cid)
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}-0" for r in h.requests)


def test_page_without_value_is_a_protocol_error_not_an_empty_page() -> None:
    h = make_client(lambda r: ok({"@odata.context": "x"}), max_attempts=3)
    with pytest.raises(GraphTransientError, match="value"):
        list(h.client.iter_pages("/users"))
    assert h.client.request_count == 3


def test_page_without_value_recovers_on_retry() -> None:
    answers = iter([ok({"nothing": 1}), ok({"value": [{"id": "a"}]})])
    h = make_client(lambda r: next(answers))
    assert list(h.client.iter_pages("/users")) == [[{"id": "a"}]]


def test_next_link_to_another_host_is_refused() -> None:
    h = make_client(lambda r: ok({"value": [], "@odata.nextLink": "https://evil.test/v1.0/users?x=1"}))
    with pytest.raises(GraphTransientError, match="unexpected host"):
        list(h.client.iter_pages("/users"))
    assert h.client.request_count == 1


def test_origin_check_implies_default_ports_and_treats_loopback_names_as_one_host() -> None:
    from entrasync.adapters.graph.wire import origin_of as _origin_of

    assert _origin_of("https://graph.microsoft.com/v1.0/users") == _origin_of("https://graph.microsoft.com:443/v1.0/x")
    assert _origin_of("https://127.0.0.1:8443/v1.0") == _origin_of("https://localhost:8443/v1.0/users?$skiptoken=a")
    assert _origin_of("https://127.0.0.1:8443/v1.0") != _origin_of("https://127.0.0.1:9443/v1.0")
    assert _origin_of("https://127.0.0.1:8443/v1.0") != _origin_of("http://127.0.0.1:8443/v1.0")
    assert _origin_of("https://graph.microsoft.com/v1.0") != _origin_of("https://graph.microsoft.com.evil.test/v1.0")


# -- retries --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [("3", 3.0), ("0.25", 0.25), ("1.5", 1.5)],
)
def test_429_honours_retry_after(retry_after: str, expected: float) -> None:
    answers = iter([graph_error(429, "TooManyRequests", "slow down", {"Retry-After": retry_after}), ok({"value": []})])
    h = make_client(lambda r: next(answers))
    assert h.client.get("/users") == {"value": []}
    assert h.clock.sleeps == [expected]
    assert h.client.request_count == 2


def test_429_without_retry_after_backs_off_exponentially_with_jitter() -> None:
    answers = iter([httpx.Response(429)] * 3 + [ok({"value": []})])
    h = make_client(lambda r: next(answers), rng=0.5)
    h.client.get("/users")
    # base 0.5 s doubling, times (0.5 + 0.5 * rng) = 0.75
    assert h.clock.sleeps == pytest.approx([0.375, 0.75, 1.5])


@pytest.mark.parametrize("status", [503, 504])
@pytest.mark.parametrize("retry_after", [None, "2"])
def test_503_504_are_retried(status: int, retry_after: str | None) -> None:
    headers = {"Retry-After": retry_after} if retry_after else {}
    answers = iter([httpx.Response(status, headers=headers), ok({"value": [1]})])
    h = make_client(lambda r: next(answers), rng=0.0)
    assert h.client.get("/users")["value"] == [1]
    assert h.clock.sleeps == ([2.0] if retry_after else [0.25])


def test_retry_after_http_date() -> None:
    now = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Mon, 01 Jan 2024 12:00:07 GMT", now=now) == 7.0
    assert parse_retry_after("Mon, 01 Jan 2024 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("-3") == 0.0


class _BrokenStream(httpx.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        yield b'{"value": [{"id": "a"}'
        raise httpx.ReadError("connection reset by peer")


def test_connection_reset_mid_body_is_retried() -> None:
    answers = iter([httpx.Response(200, stream=_BrokenStream()), ok({"value": [{"id": "a"}]})])
    h = make_client(lambda r: next(answers))
    assert h.client.get("/users")["value"] == [{"id": "a"}]
    assert h.client.request_count == 2
    assert len(h.clock.sleeps) == 1


@pytest.mark.parametrize(
    "exc",
    [
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("timed out"),
    ],
)
def test_transport_errors_are_retried(exc: Exception) -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            raise exc
        return ok({"value": []})

    h = make_client(handler)
    assert h.client.get("/users") == {"value": []}
    assert h.client.request_count == 2


def test_truncated_json_on_200_is_retried() -> None:
    answers = iter(
        [
            httpx.Response(200, content=b'{"value": [{"id": "a"}, {"id": "b"'),
            ok({"value": [{"id": "a"}, {"id": "b"}]}),
        ]
    )
    h = make_client(lambda r: next(answers))
    assert len(h.client.get("/users")["value"]) == 2
    assert h.client.request_count == 2


def test_retry_budget_in_seconds_is_bounded() -> None:
    h = make_client(lambda r: httpx.Response(503, headers={"Retry-After": "50"}), max_retry_seconds=120)
    with pytest.raises(GraphTransientError) as info:
        h.client.get("/users")
    assert h.clock.sleeps == [50.0, 50.0]  # a third wait would overrun the 120 s budget
    assert h.client.request_count == 3
    assert info.value.status == 503


def test_retry_attempts_are_bounded() -> None:
    h = make_client(lambda r: httpx.Response(429, headers={"Retry-After": "0"}), max_attempts=4)
    with pytest.raises(GraphTransientError, match="4 attempt"):
        h.client.get("/users")
    assert h.client.request_count == 4


def test_persistent_connection_errors_end_in_transient_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("reset")

    h = make_client(handler, max_attempts=3)
    with pytest.raises(GraphTransientError, match="connection error"):
        h.client.get("/users")
    assert h.client.request_count == 3


# -- error mapping --------------------------------------------------------------------------------


def test_401_reauthenticates_once_then_succeeds() -> None:
    answers = iter([graph_error(401, "InvalidAuthenticationToken", "expired"), ok({"value": []})])
    h = make_client(lambda r: next(answers))
    assert h.client.get("/users") == {"value": []}
    assert h.token.invalidations == 1
    assert [r.headers["Authorization"] for r in h.requests] == [f"Bearer {TOKEN}-0", f"Bearer {TOKEN}-1"]
    assert h.clock.sleeps == []


def test_401_twice_is_a_stop_error() -> None:
    h = make_client(lambda r: graph_error(401, "InvalidAuthenticationToken", "Access token is empty."))
    with pytest.raises(GraphStopError) as info:
        h.client.get("/users")
    assert h.client.request_count == 2
    assert h.token.invalidations == 1
    assert info.value.status == 401
    assert "InvalidAuthenticationToken" in str(info.value)
    assert TOKEN not in str(info.value)


def test_403_is_a_stop_error_naming_the_permissions() -> None:
    h = make_client(
        lambda r: graph_error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
    )
    with pytest.raises(GraphStopError) as info:
        h.client.get("/users")
    msg = str(info.value)
    assert "Insufficient privileges" in msg
    assert "User.Read.All" in msg and "GroupMember.Read.All" in msg
    assert info.value.code == "Authorization_RequestDenied"
    # Asked again once with a new token (a reused token may predate the consent), then refused.
    assert h.client.request_count == 2 and h.token.invalidations == 1


def test_a_403_with_a_token_older_than_the_consent_succeeds_with_a_new_one() -> None:
    """Tokens live across refreshes in a process (auth.PROCESS_TOKENS); one issued before the admin
    granted a permission lacks it, so a 403 is asked again once with a new token."""
    answers = iter([graph_error(403, "Authorization_RequestDenied", "Insufficient privileges."), ok({"value": []})])
    h = make_client(lambda r: next(answers))
    assert h.client.get("/users") == {"value": []}
    assert [r.headers["Authorization"] for r in h.requests] == [f"Bearer {TOKEN}-0", f"Bearer {TOKEN}-1"]
    assert h.clock.sleeps == []


def test_400_carries_graphs_code_and_message() -> None:
    h = make_client(
        lambda r: graph_error(
            400, "Request_UnsupportedQuery", "Unsupported or invalid query filter clause specified for property 'x'."
        )
    )
    with pytest.raises(GraphBadRequestError) as info:
        h.client.get("/users", {"$filter": "x eq 1"})
    err = info.value
    assert not isinstance(err, DeltaTokenExpiredError)
    assert (err.status, err.code) == (400, "Request_UnsupportedQuery")
    assert err.message == "Unsupported or invalid query filter clause specified for property 'x'."
    assert err.request_id == "rid-1"
    assert h.client.request_count == 1


def test_404_is_a_bad_request_error() -> None:
    h = make_client(lambda r: graph_error(404, "Request_ResourceNotFound", "Resource 'g' does not exist."))
    with pytest.raises(GraphBadRequestError) as info:
        h.client.get("/groups/g")
    assert info.value.status == 404


def test_non_json_error_body_still_maps() -> None:
    h = make_client(lambda r: httpx.Response(400, content=b"<html>bad</html>"))
    with pytest.raises(GraphBadRequestError) as info:
        h.client.get("/users")
    assert info.value.status == 400


def test_delta_token_expired_400_sync_state_not_found() -> None:
    h = make_client(lambda r: graph_error(400, "syncStateNotFound", "The sync state generation is not found."))
    with pytest.raises(DeltaTokenExpiredError) as info:
        h.client.delta(f"{API}/users/delta?$deltatoken=old")
    assert info.value.code == "syncStateNotFound"


def test_delta_token_expired_410_gone() -> None:
    h = make_client(lambda r: httpx.Response(410, headers={"Location": f"{API}/users/delta?$deltatoken="}))
    with pytest.raises(DeltaTokenExpiredError) as info:
        h.client.delta(f"{API}/users/delta?$deltatoken=old")
    assert info.value.status == 410


def test_delta_round_follows_next_links_to_the_delta_link() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        tok = query(request)
        if "$deltatoken" in tok:
            return ok({"value": [{"id": "1"}], "@odata.nextLink": f"{API}/users/delta?$skiptoken=s1"})
        return ok({"value": [{"id": "2"}], "@odata.deltaLink": f"{API}/users/delta?$deltatoken=new"})

    h = make_client(handler)
    items, link = h.client.delta(f"{API}/users/delta?$deltatoken=old")
    assert [i["id"] for i in items] == ["1", "2"]
    assert link == f"{API}/users/delta?$deltatoken=new"


def test_delta_page_without_any_link_is_a_protocol_error() -> None:
    h = make_client(lambda r: ok({"value": []}))
    with pytest.raises(GraphTransientError):
        h.client.delta(f"{API}/users/delta?$deltatoken=old")


def test_token_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    answers = iter([graph_error(429, "TooManyRequests", "x", {"Retry-After": "1"}), graph_error(403, "Denied", "no"),
                    graph_error(403, "Denied", "no")])  # fmt: skip
    h = make_client(lambda r: next(answers))
    with caplog.at_level(logging.DEBUG), pytest.raises(GraphStopError) as info:
        h.client.get("/users")
    assert TOKEN not in caplog.text
    assert "Bearer" not in caplog.text
    assert TOKEN not in str(info.value)
    assert "rid-1" in caplog.text  # request-id logged for support
