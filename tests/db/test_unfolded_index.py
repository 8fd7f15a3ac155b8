"""The people whose e-mail may fold differently (ß, ς, µ) are found through ix_people_unfolded, not a
scan of every e-mail (migration 0014): the query repeats the index's predicate word for word, which is
how either database knows the partial index answers it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from entrasync.adapters.db import tables as t
from entrasync.adapters.db.uow import Database

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    with database.write() as uow:
        uow.conn.execute(sa.insert(t.organisations).values(id=1, slug="o", name="O", created_at=NOW))
        for i, email in enumerate(["ann@contoso.com", "straße@contoso.com", "zoë@contoso.com", "ΣΊΣΥΦΟΣ@x.gr"]):
            uow.conn.execute(sa.insert(t.people).values(
                id=i + 1, org_id=1, email=email, email_lower=email.lower(), display_name=email, status="active",
                source="entra", created_at=NOW, updated_at=NOW))  # fmt: skip
    yield database
    database.dispose()


def test_the_unfolded_e_mails_are_read_through_their_index(db: Database) -> None:
    with db.read() as uow:
        found = uow.people.unfolded_ids(1)
        # straße folds to strasse, σίσυφος's final ς to σ; zoë lower-cases and casefolds alike
        assert sorted(found) == [2, 4]
        sql = str(uow.people.unfolded_query(1).compile(uow.conn, compile_kwargs={"literal_binds": True}))
        if uow.conn.dialect.name == "postgresql":
            uow.conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a four-row table: ask whether it can
            plan = uow.conn.exec_driver_sql(f"EXPLAIN {sql}").scalars().all()
        else:
            plan = [r[3] for r in uow.conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]
        assert any("ix_people_unfolded" in str(line) for line in plan), plan
