"""services.graph_tokens: an organisation's Graph access token kept between processes, sealed in its
connection row. Round trip; sealed (neither the token nor the credential digest readable in the row);
forgotten; gone with a new connection, a disconnect, another organisation and another secret key; and a
store that cannot answer holds nothing instead of failing the refresh."""

from __future__ import annotations

import time

import sqlalchemy as sa
from tests.services.conftest import CLIENT, TENANT, Org

from entrasync.adapters.crypto import SecretBox
from entrasync.adapters.db import tables as t
from entrasync.services import connection, orgs
from entrasync.services.context import Actor, AppContext
from entrasync.services.graph_tokens import StoredTokens

KEY = "f" * 64
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.a-very-secret-access-token.signature"


def _sealed(svc: Org, org_id: int) -> bytes | None:
    with svc.ctx.db.reader.connect() as conn:
        value = conn.execute(sa.select(t.connections.c.token_enc).where(t.connections.c.org_id == org_id)).scalar()
    return None if value is None else bytes(value)


def test_a_kept_token_comes_back_sealed_in_the_connection_row(svc: Org) -> None:
    store = StoredTokens(svc.ctx, svc.org_id)
    assert store.load() is None
    expires = time.time() + 3600
    store.save(KEY, TOKEN, expires)
    key, token, expires_at = store.load() or ("", "", 0.0)
    assert (key, token) == (KEY, TOKEN) and abs(expires_at - expires) < 1e-3
    sealed = _sealed(svc, svc.org_id)
    assert sealed is not None and TOKEN.encode() not in sealed and KEY.encode() not in sealed
    assert b"a-very-secret" not in sealed
    store.forget()
    assert store.load() is None and _sealed(svc, svc.org_id) is None


def test_a_new_connection_or_a_disconnect_drops_it(svc: Org) -> None:
    store = StoredTokens(svc.ctx, svc.org_id)
    store.save(KEY, TOKEN, time.time() + 3600)
    connection.connect(svc.ctx, svc.org_id, Actor.cli(), connection.Credentials(TENANT, CLIENT, "new-secret"),
                       verify=False)  # fmt: skip
    assert store.load() is None
    store.save(KEY, TOKEN, time.time() + 3600)
    connection.disconnect(svc.ctx, svc.org_id, Actor.cli())
    assert store.load() is None
    store.save(KEY, TOKEN, time.time() + 3600)  # the row is gone: nothing to keep it in, and no error
    assert store.load() is None


def test_another_organisation_never_sees_it(svc: Org) -> None:
    other = orgs.create(svc.ctx, "other-org", "Other")
    connection.connect(svc.ctx, other, Actor.cli(), connection.Credentials("other-tenant", CLIENT, "s3cret"),
                       verify=False)  # fmt: skip
    StoredTokens(svc.ctx, svc.org_id).save(KEY, TOKEN, time.time() + 3600)
    assert StoredTokens(svc.ctx, other).load() is None
    StoredTokens(svc.ctx, other).forget()
    assert StoredTokens(svc.ctx, svc.org_id).load() is not None


def test_under_another_secret_key_it_is_a_miss_not_an_error(svc: Org) -> None:
    StoredTokens(svc.ctx, svc.org_id).save(KEY, TOKEN, time.time() + 3600)
    other_key = AppContext(config=svc.ctx.config, db=svc.ctx.db, box=SecretBox("another deployment key"))
    assert StoredTokens(other_key, svc.org_id).load() is None


def test_a_store_that_cannot_reach_the_database_holds_nothing_and_raises_nothing(svc: Org) -> None:
    def locked() -> None:
        raise RuntimeError("database is locked")

    broken = AppContext(config=svc.ctx.config, db=svc.ctx.db, box=svc.ctx.box)
    broken.read = locked  # type: ignore[method-assign,assignment]
    broken.write = locked  # type: ignore[method-assign,assignment]
    store = StoredTokens(broken, svc.org_id)
    assert store.load() is None
    store.save(KEY, TOKEN, time.time() + 3600)
    store.forget()
    assert StoredTokens(svc.ctx, svc.org_id).load() is None  # nothing was written


def test_the_row_a_refresh_read_answers_the_first_load_only(svc: Org) -> None:
    StoredTokens(svc.ctx, svc.org_id).save(KEY, TOKEN, time.time() + 3600)
    with svc.ctx.read() as uow:
        row = uow.connections.get(svc.org_id)
    held = StoredTokens.held_in(row)
    assert held is not None and TOKEN.encode() not in held[0]
    reads: list[str] = []

    def on_statement(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        if not statement.startswith("BEGIN"):  # on SQLite, the engine issues its own BEGIN
            reads.append(statement)

    sa.event.listen(svc.ctx.db.engine, "before_cursor_execute", on_statement)
    try:
        store = StoredTokens(svc.ctx, svc.org_id, first=held)
        assert (store.load() or ("",))[0] == KEY and reads == [], "the row read with the credentials answers"
        assert (store.load() or ("",))[0] == KEY and len(reads) == 1, "a later load reads the row again"
        empty = StoredTokens(svc.ctx, svc.org_id, first=StoredTokens.held_in({"token_enc": None}))
        assert empty.load() is None and len(reads) == 1, "a row with no token: a miss, no read"
        # A forget (a 401) before the first load: what the row held is stale, never answered.
        stale = StoredTokens(svc.ctx, svc.org_id, first=held)
        stale.forget()
        assert stale.load() is None
    finally:
        sa.event.remove(svc.ctx.db.engine, "before_cursor_execute", on_statement)
