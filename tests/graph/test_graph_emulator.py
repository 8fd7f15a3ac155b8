"""The Graph client and reader against the real emulator over HTTPS (msal, TLS, paging, delta, faults)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from entrasync.adapters.graph import (
    GraphBadRequestError,
    GraphClient,
    GraphConfig,
    GraphStopError,
    GraphTransientError,
    check_groups,
    count_users,
    fetch_snapshot,
)
from entrasync.adapters.graph.auth import MsalTokenProvider
from entrasync.adapters.graph.reader import FetchResult
from entrasync.domain.model import EntraUser
from entrasync.emulator.admin_client import AdminClient
from entrasync.emulator.server import EmulatorInfo, RunningEmulator, start_in_thread


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    emu = start_in_thread(users=300, seed=7, data_dir=tmp_path_factory.mktemp("emu"))
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def admin(emulator: RunningEmulator) -> Iterator[AdminClient]:
    client = AdminClient(emulator.info.admin_url, emulator.info.ca_bundle)
    try:
        yield client
    finally:
        client.clear_faults()
        client.set_app_permissions(["User.Read.All", "GroupMember.Read.All"])
        client.settings(delta_expiry_mode="400")
        client.close()


def config(info: EmulatorInfo, **overrides: Any) -> GraphConfig:
    values: dict[str, Any] = {
        "graph_url": info.graph_url,
        "login_url": info.login_url,
        "tenant_id": info.tenant_id,
        "client_id": info.client_id,
        "client_credential": info.client_secret,
        "ca_bundle": info.ca_bundle,
        **overrides,
    }
    return GraphConfig(**values)


@pytest.fixture
def graph(emulator: RunningEmulator) -> Iterator[GraphClient]:
    slept: list[float] = []
    client = GraphClient(config(emulator.info, max_attempts=6), sleep=slept.append)
    try:
        yield client
    finally:
        client.close()


def expected_users(admin: AdminClient) -> dict[str, EntraUser]:
    """What the tenant holds, per the emulator's admin API, mapped like §4.2 needs it."""
    live = admin.list_users()
    ids = {u["id"] for u in live}
    return {
        u["id"]: EntraUser.of(
            id=u["id"],
            user_principal_name=u["userPrincipalName"],
            mail=u["mail"],
            display_name=u["displayName"],
            given_name=u["givenName"],
            surname=u["surname"],
            job_title=u["jobTitle"],
            employee_id=u["employeeId"],
            office_location=u["officeLocation"],
            department=u["department"],
            start_date=(u.get("employeeHireDate") or "")[:10] or None,
            employee_type=u.get("employeeType"),
            company_name=u.get("companyName"),
            city=u.get("city"),
            country=u.get("country"),
            mobile_phone=u.get("mobilePhone"),
            business_phones=tuple(u.get("businessPhones") or ()),
            preferred_language=u.get("preferredLanguage"),
            account_enabled=u["accountEnabled"],
            user_type=u["userType"],
            manager_id=u["managerId"] if u["managerId"] in ids else None,
        )
        for u in live
    }


def full(graph: GraphClient, **kw: Any) -> FetchResult:
    args: dict[str, Any] = {"graph_filter": None, "group_ids": None, "cursor": None, **kw}
    return fetch_snapshot(graph, **args)


def test_full_read_matches_the_tenant(graph: GraphClient, admin: AdminClient) -> None:
    result = full(graph)
    want = expected_users(admin)
    assert result.mode == "full"
    assert dict(result.snapshot.users) == want
    assert any(u.manager_id for u in want.values())
    assert any(not u.account_enabled for u in want.values())
    assert result.snapshot.soft_deleted_ids == frozenset(u["id"] for u in admin.list_deleted_users())
    assert result.cursor is not None
    # 300 users in one $top=999 page, the latest delta link and deletedItems: about 3 requests, not 300.
    assert result.requests <= 4


def test_delta_round_after_joiner_mover_leaver_and_deletes(graph: GraphClient, admin: AdminClient) -> None:
    first = full(graph)
    assert first.cursor is not None
    users = list(first.snapshot.users.values())
    mover, new_manager, leaver, purged, renamed = users[10], users[20], users[30], users[40], users[50]

    joiner = admin.create_user(displayName="Zoë Joiner", userPrincipalName="zoe.joiner@contoso.com", department="Sales")
    admin.set_manager(joiner["id"], new_manager.id)
    admin.set_manager(mover.id, new_manager.id)
    admin.update_user(renamed.id, displayName="Renamed Person", jobTitle=None)
    admin.disable_user(users[60].id)
    admin.soft_delete_user(leaver.id)
    admin.hard_delete_user(purged.id)

    second = fetch_snapshot(graph, graph_filter=None, group_ids=None, cursor=first.cursor)
    assert second.mode == "delta"
    got = second.snapshot.users
    assert dict(got) == expected_users(admin)
    assert got[joiner["id"]].manager_id == new_manager.id
    assert got[mover.id].manager_id == new_manager.id
    assert got[renamed.id].display_name == "Renamed Person" and got[renamed.id].job_title is None
    assert got[users[60].id].account_enabled is False
    assert leaver.id not in got and leaver.id in second.snapshot.soft_deleted_ids
    assert purged.id not in got and purged.id not in second.snapshot.soft_deleted_ids

    # Restore: the user comes back, and is no longer soft-deleted.
    admin.restore_user(leaver.id)
    assert second.cursor is not None
    third = fetch_snapshot(graph, graph_filter=None, group_ids=None, cursor=second.cursor)
    assert third.mode == "delta"
    assert dict(third.snapshot.users) == expected_users(admin)
    assert leaver.id in third.snapshot.users
    assert leaver.id not in third.snapshot.soft_deleted_ids
    # An unchanged tenant costs a handful of requests.
    assert third.requests <= 3


@pytest.mark.parametrize("mode", ["400", "410"])
def test_expired_delta_token_falls_back_to_full_read(graph: GraphClient, admin: AdminClient, mode: str) -> None:
    first = full(graph)
    admin.settings(delta_expiry_mode=mode)
    admin.expire_delta_tokens(mode)
    second = fetch_snapshot(graph, graph_filter=None, group_ids=None, cursor=first.cursor)
    assert second.mode == "full"
    assert dict(second.snapshot.users) == expected_users(admin)
    assert second.cursor is not None and second.cursor.delta_link != first.cursor.delta_link  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("kind", "retry_after"),
    [("429", "0.05"), ("429", None), ("503", "0"), ("503", None), ("504", None), ("reset", None),
     ("truncate", None), ("no_value", None)],
)  # fmt: skip
def test_faults_are_retried(emulator: RunningEmulator, admin: AdminClient, kind: str, retry_after: str | None) -> None:
    slept: list[float] = []
    graph = GraphClient(config(emulator.info), sleep=slept.append)
    baseline = full(graph)
    admin.inject_fault("/v1.0/users", kind, count=2, retry_after=retry_after)
    result = full(graph)
    assert dict(result.snapshot.users) == dict(baseline.snapshot.users)
    assert result.requests == baseline.requests + 2
    assert len(slept) == 2
    if retry_after is not None:
        assert slept == [float(retry_after)] * 2
    graph.close()


def test_persistent_fault_fails_the_fetch(emulator: RunningEmulator, admin: AdminClient) -> None:
    graph = GraphClient(config(emulator.info, max_attempts=3), sleep=lambda s: None)
    admin.inject_fault("/v1.0/users", "503", count=10)
    with pytest.raises(GraphTransientError):
        full(graph)
    assert graph.request_count >= 3
    graph.close()


def test_filters_and_counts(graph: GraphClient, admin: AdminClient) -> None:
    want = expected_users(admin)
    sales = {uid for uid, u in want.items() if u.department == "Sales"}
    result = full(graph, graph_filter="department eq 'Sales'")
    assert set(result.snapshot.users) == sales
    assert result.snapshot.all_ids == frozenset(want)
    assert result.cursor is None
    assert count_users(graph, "department eq 'Sales'") == len(sales)

    # An advanced query (ne): ConsistencyLevel + $count; managers still present.
    result = full(graph, graph_filter="accountEnabled ne true")
    disabled = {uid for uid, u in want.items() if not u.account_enabled}
    assert set(result.snapshot.users) == disabled
    for uid in disabled:
        assert result.snapshot.users[uid] == want[uid]
    assert count_users(graph, "accountEnabled ne true") == len(disabled)
    assert count_users(graph, None) == len(want)


def test_bad_filter_surfaces_graphs_message(graph: GraphClient) -> None:
    with pytest.raises(GraphBadRequestError) as info:
        count_users(graph, "nosuchProperty eq 'x'")
    assert info.value.status == 400
    assert "nosuchProperty" in info.value.message


def test_group_filter_is_transitive(graph: GraphClient, admin: AdminClient) -> None:
    users = list(expected_users(admin))
    inner = admin.create_group("Inner", members=[users[1]])
    outer = admin.create_group("Outer", members=[inner["id"], users[2]])
    result = full(graph, group_ids=[outer["id"]])
    assert result.snapshot.group_member_ids == frozenset({users[1], users[2]})
    missing = "00000000-0000-0000-0000-00000000dead"
    assert check_groups(graph, [outer["id"], missing]) == [missing]


def test_missing_permission_is_a_stop_error(emulator: RunningEmulator, admin: AdminClient) -> None:
    admin.set_app_permissions([])
    graph = GraphClient(config(emulator.info), sleep=lambda s: None)
    with pytest.raises(GraphStopError) as info:
        full(graph)
    assert "User.Read.All" in str(info.value)
    graph.close()


def test_wrong_secret_is_a_stop_error_without_the_secret(emulator: RunningEmulator) -> None:
    graph = GraphClient(config(emulator.info, client_credential="wrong-secret-value"), sleep=lambda s: None)
    with pytest.raises(GraphStopError) as info:
        full(graph)
    assert "wrong-secret-value" not in str(info.value)
    assert "invalid_client" in str(info.value)
    assert graph.request_count == 0
    graph.close()


def test_ca_bundle_wins_over_environment(
    emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate\n")
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.setenv(var, str(bogus))
    graph = GraphClient(config(emulator.info), sleep=lambda s: None)
    assert count_users(graph, None) > 0
    graph.close()


def test_msal_provider_invalidate_fetches_a_new_token(emulator: RunningEmulator) -> None:
    info = emulator.info
    provider = MsalTokenProvider(
        login_url=info.login_url,
        tenant_id=info.tenant_id,
        client_id=info.client_id,
        client_credential=info.client_secret,
        graph_url=info.graph_url,
        ca_bundle=info.ca_bundle,
    )
    token_posts: list[str] = []
    real_post = provider._session.post

    def counting_post(url: str, *args: Any, **kwargs: Any) -> Any:
        token_posts.append(url)
        return real_post(url, *args, **kwargs)

    provider._session.post = counting_post  # type: ignore[method-assign,assignment]
    first = provider()
    assert provider() == first
    assert len(token_posts) == 1  # the second call came from msal's in-memory cache
    provider.invalidate()
    provider()
    assert len(token_posts) == 2  # invalidate made msal ask the token endpoint again


def test_expired_token_401_is_recovered_by_one_reauthentication(emulator: RunningEmulator, admin: AdminClient) -> None:
    info = emulator.info
    real = MsalTokenProvider(
        login_url=info.login_url,
        tenant_id=info.tenant_id,
        client_id=info.client_id,
        client_credential=info.client_secret,
        graph_url=info.graph_url,
        ca_bundle=info.ca_bundle,
    )
    expired = admin.mint_app_token(lifetime=0)

    class StaleThenFresh:
        def __init__(self) -> None:
            self.stale = True

        def __call__(self) -> str:
            return expired if self.stale else real()

        def invalidate(self) -> None:
            self.stale = False

    graph = GraphClient(config(info), token_provider=StaleThenFresh(), sleep=lambda s: None)
    assert count_users(graph, None) > 0
    assert graph.request_count == 2
    graph.close()

    always_stale = GraphClient(config(info), token_provider=lambda: expired, sleep=lambda s: None)
    with pytest.raises(GraphStopError) as info_401:
        count_users(always_stale, None)
    assert info_401.value.status == 401
    assert expired not in str(info_401.value)
    always_stale.close()
