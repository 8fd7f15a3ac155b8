"""Sign-in finds the person's organisation (spec §10): ``/o/{slug}/signin``, the chooser on ``/signin``
when one e-mail has local accounts in several organisations, and what a session then reaches."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from tests.web.conftest import PASSWORD, csrf_of

from entrasync.services import accounts, orgs, people
from entrasync.services.context import Actor, AppContext

SHARED = "pat@shared.example"


def _account(ctx: AppContext, org_id: int, email: str, name: str, password: str = PASSWORD) -> int:
    person = accounts.create_admin(ctx, org_id, Actor.cli(), email=email, name=name, password=password,
                                   roles=["super_admin"])  # fmt: skip
    return int(person["id"])


def _post(client: TestClient, path: str, email: str, password: str = PASSWORD) -> object:
    csrf = csrf_of(client.get(path).text)
    return client.post(path, data={"csrf_token": csrf, "email": email, "password": password}, follow_redirects=False)


def _me(client: TestClient) -> dict[str, object]:
    r = client.get("/api/v1/me")
    assert r.status_code == 200, r.text
    data: dict[str, object] = r.json()
    return data


@pytest.fixture
def two_orgs(app_ctx: AppContext) -> tuple[int, int]:
    default = app_ctx.org_id()
    acme = orgs.create(app_ctx, "acme", "Acme Ltd")
    people.add_person(app_ctx, default, Actor.cli(), {"email": "only-default@d.example", "display_name": "Dee Fault"})
    people.add_person(app_ctx, acme, Actor.cli(), {"email": "only-acme@a.example", "display_name": "Ann Acme"})
    return default, acme


def test_an_organisation_page_signs_in_to_that_organisation_only(
    client: TestClient, app_ctx: AppContext, two_orgs: tuple[int, int]
) -> None:
    _default, acme = two_orgs
    pid = _account(app_ctx, acme, "boss@acme.example", "Acme Boss")
    page = client.get("/o/acme/signin")
    assert page.status_code == 200 and "Acme Ltd" in page.text and 'action="/o/acme/signin"' in page.text
    # The account is Acme's: the default organisation's page does not know it.
    r = _post(client, "/o/default/signin", "boss@acme.example")
    assert r.status_code == 400 and "not right" in r.text  # type: ignore[attr-defined]
    r = _post(client, "/o/acme/signin", "boss@acme.example")
    assert r.status_code == 303  # type: ignore[attr-defined]
    me = _me(client)
    assert me["id"] == pid and me["email"] == "boss@acme.example"
    listed = client.get("/api/v1/people?status=all&per_page=500").json()["items"]
    assert {p["email"] for p in listed} == {"boss@acme.example", "only-acme@a.example"}
    assert client.get("/people").status_code == 200 and "Dee Fault" not in client.get("/people").text
    assert client.get("/o/nowhere/signin").status_code == 404


def test_the_plain_page_finds_the_only_organisation_of_an_account(
    client: TestClient, app_ctx: AppContext, two_orgs: tuple[int, int]
) -> None:
    _default, acme = two_orgs
    pid = _account(app_ctx, acme, "boss@acme.example", "Acme Boss")
    assert _post(client, "/signin", "boss@acme.example").status_code == 303  # type: ignore[attr-defined]
    assert _me(client)["id"] == pid


def test_one_email_in_two_organisations_is_asked_which(
    client: TestClient, app_ctx: AppContext, two_orgs: tuple[int, int]
) -> None:
    default, acme = two_orgs
    in_default = _account(app_ctx, default, SHARED, "Pat Default")
    in_acme = _account(app_ctx, acme, SHARED, "Pat Acme")
    r = _post(client, "/signin", SHARED)
    assert r.status_code == 200, r.text  # type: ignore[attr-defined]
    chooser = r.text  # type: ignore[attr-defined]
    assert "Choose your organisation" in chooser and "Acme Ltd" in chooser and "Default organisation" in chooser
    assert client.get("/api/v1/me").status_code == 401, "not signed in until a choice is made"
    # A choice that was not offered is refused; the offered one signs in there.
    csrf = csrf_of(chooser)
    r = client.post("/signin/choose", data={"csrf_token": csrf, "org_id": "999"}, follow_redirects=False)
    assert r.status_code == 403
    r = _post(client, "/signin", SHARED)
    csrf = csrf_of(r.text)  # type: ignore[attr-defined]
    r = client.post("/signin/choose", data={"csrf_token": csrf, "org_id": str(acme)}, follow_redirects=False)
    assert r.status_code == 303
    assert _me(client)["id"] == in_acme
    # The same e-mail with the default organisation's password alone goes straight there.
    accounts.create_admin(app_ctx, default, Actor.cli(), email=SHARED, name="Pat Default",
                          password="another long password", roles=["super_admin"], reset_password=True)  # fmt: skip
    fresh = TestClient(client.app)
    assert _post(fresh, "/signin", SHARED, "another long password").status_code == 303  # type: ignore[attr-defined]
    assert _me(fresh)["id"] == in_default


def test_a_pending_choice_expires(
    client: TestClient, app_ctx: AppContext, two_orgs: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    default, acme = two_orgs
    _account(app_ctx, default, SHARED, "Pat Default")
    _account(app_ctx, acme, SHARED, "Pat Acme")
    csrf = csrf_of(_post(client, "/signin", SHARED).text)  # type: ignore[attr-defined]
    later = time.time() + 301
    monkeypatch.setattr(time, "time", lambda: later)
    r = client.post("/signin/choose", data={"csrf_token": csrf, "org_id": str(acme)}, follow_redirects=False)
    assert r.status_code == 403 and "expired" in r.text
