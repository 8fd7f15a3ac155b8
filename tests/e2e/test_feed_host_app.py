"""Issue 15, done means: a host app that follows the change feed through churn holds exactly the directory.

Three things run at once against one database (on PostgreSQL for real, with row locks and READ
COMMITTED; on SQLite serialised by its write lock): refreshes of an emulator tenant that keeps getting
joiners, movers, updates and leavers; Super admins' hand edits (some refused, and so rolled back); and
a host app that polls ``GET /api/v1/events?after=CURSOR`` through the API with its cursor while a
webhook worker delivers the same feed to a receiver that fails 30% of requests. At the end the host
app's replay equals ``GET /api/v1/people`` field for field, the feed has no gap and no duplicate, and
the receiver holds every event once, verified, in order per person.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from standardwebhooks.webhooks import Webhook
from tests.feed_helpers import replay
from tests.web.conftest import make_ctx

from entrasync.domain.events import person_values
from entrasync.emulator.webhook_receiver import start_receiver
from entrasync.errors import EntrasyncError
from entrasync.services import (
    api_tokens,
    connection,
    events,
    people,
    sync,
    sync_settings,
    webhook_delivery,
    webhooks,
)
from entrasync.services.context import Actor, AppContext
from entrasync.web.app import create_app

ROUNDS = 4
CLI = Actor.cli()


def _entra_churn(admin: Any, rng: random.Random, round_: int) -> None:
    users = [u for u in admin.list_users() if u.get("accountEnabled")]
    for i in range(3):  # joiners, one managed by another joiner's manager
        admin.create_user(displayName=f"Joiner {round_}.{i}", mail=f"joiner{round_}.{i}@contoso.com",
                          userPrincipalName=f"joiner{round_}.{i}@contoso.com", accountEnabled=True,
                          department="Feed", jobTitle="New", managerId=rng.choice(users)["id"])  # fmt: skip
    picked = rng.sample(users, 8)
    for u in picked[:3]:  # movers
        admin.set_manager(u["id"], rng.choice([x for x in users if x["id"] != u["id"]])["id"])
    for u in picked[3:5]:  # updates
        admin.update_user(u["id"], jobTitle=f"Title {round_}", department=rng.choice(["Sales", "Ops", None]))
    admin.disable_user(picked[5]["id"])  # leavers
    admin.soft_delete_user(picked[6]["id"])


def _hand_edits(ctx: AppContext, org: int, rng: random.Random, stop: threading.Event, counts: dict[str, int]) -> None:
    n = 0
    while not stop.is_set():
        everyone = people.find_people(ctx, org, status="all", limit=500).items
        if not everyone:
            time.sleep(0.01)
            continue
        p = rng.choice(everyone)
        try:
            action = rng.randrange(5)
            if action == 0:
                people.edit_person(ctx, org, CLI, p["id"], {"job_title": f"By hand {n}"})
            elif action == 1:
                people.move_person(ctx, org, CLI, p["id"], rng.choice(everyone)["id"])  # loops are refused
            elif action == 2:
                people.set_status(ctx, org, CLI, p["id"], rng.choice(["paused", "active", "archived"]))
            elif action == 3:
                people.add_person(ctx, org, CLI, {"email": f"hand{n}@example.com", "display_name": f"Hand {n}"})
            else:
                people.edit_person(ctx, org, CLI, p["id"], {"email": everyone[0]["email"]})  # a taken e-mail
            counts["done"] += 1
        except EntrasyncError:
            counts["refused"] += 1
        n += 1
        time.sleep(0.005)


def _host_app(client: TestClient, h: dict[str, str], stop: threading.Event, got: list[dict[str, Any]]) -> None:
    """Poll the feed with the cursor, as a host app does, until told to stop and nothing is left."""
    cursor: str | None = None
    while True:
        r = client.get("/api/v1/events", params={"limit": 37, **({"after": cursor} if cursor else {})}, headers=h)
        assert r.status_code == 200, r.text
        page = r.json()
        got.extend(page["items"])
        cursor = page["next_cursor"]
        if not page["items"]:
            if stop.is_set():
                return
            time.sleep(0.02)


def _deliverer(ctx: AppContext, stop: threading.Event) -> None:
    """A webhook worker whose clock runs fast, so back-off waits are seconds of test time."""
    now = ctx.now()
    with webhook_delivery.client_for(ctx, 4) as http:
        while True:
            counts = webhook_delivery.deliver_due(ctx, now=now, client=http, workers=4)
            now += timedelta(minutes=30)
            if counts.attempted == 0 and counts.queued == 0:
                if stop.is_set():
                    return
                time.sleep(0.02)


def _directory_through_the_api(client: TestClient, h: dict[str, str]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"status": "all", "limit": 100, **({"after": cursor} if cursor else {})}
        page = client.get("/api/v1/people", params=params, headers=h).json()
        out.update({p["id"]: person_values(p) for p in page["items"]})
        cursor = page["next_cursor"]
        if cursor is None:
            return out


def test_a_host_app_following_the_feed_through_concurrent_churn_holds_exactly_the_directory(
    env: dict[str, str], emulator: Any, admin: Any
) -> None:
    ctx = make_ctx({**env, "ENTRASYNC_WEBHOOK_ALLOW_PRIVATE": "1"}, "http://testserver")
    org = ctx.org_id()
    info = emulator.info
    connection.connect(ctx, org, CLI, connection.Credentials(info.tenant_id, info.client_id, info.client_secret))
    sync_settings.save(ctx, org, CLI, {"guard_percent": 100}, None)
    host = people.add_person(ctx, org, CLI, {"email": "host@example.com", "roles": ["super_admin"]})
    _rec, token = api_tokens.create(ctx, org, host, "host app", scopes=["read"])
    h = {"Authorization": f"Bearer {token}"}
    before_endpoint = events.seq_of(events.latest_cursor(ctx, org))  # an endpoint gets what follows its creation
    receiver = start_receiver("whsec_" + "C" * 32, fail_rate=0.3, seed=7)
    endpoint, secret = webhooks.create(ctx, org, CLI, url=receiver.url)
    receiver._webhook = Webhook(secret)  # the receiver started before the endpoint (and its secret) existed
    rng = random.Random(15)
    stop_edits, stop_readers = threading.Event(), threading.Event()
    counts = {"done": 0, "refused": 0}
    got: list[dict[str, Any]] = []
    try:
        with TestClient(create_app(ctx)) as client:
            threads = [
                threading.Thread(target=_hand_edits, args=(ctx, org, random.Random(16), stop_edits, counts)),
                threading.Thread(target=_host_app, args=(client, h, stop_readers, got)),
                threading.Thread(target=_deliverer, args=(ctx, stop_readers)),
            ]
            for th in threads[1:]:
                th.start()
            outcomes = []
            for round_ in range(ROUNDS):
                if round_:
                    _entra_churn(admin, rng, round_)
                outcomes.append(sync.refresh(ctx, org, trigger="cli", actor=CLI).outcome)
                if not round_:
                    # Hand edits start once the first sync is in: people added by hand before it, on a busy
                    # machine, would be archived by it as "not in Entra" and the guard would hold the plan.
                    threads[0].start()
                deadline = time.monotonic() + 60
                while counts["done"] < 8 * (round_ + 1) and time.monotonic() < deadline:
                    time.sleep(0.01)  # hand edits between refreshes too, not only during them
            stop_edits.set()
            threads[0].join(60)
            stop_readers.set()
            for th in threads[1:]:
                th.join(120)
            assert not any(th.is_alive() for th in threads), "a worker thread did not finish"
            directory = _directory_through_the_api(client, h)
        received = receiver.received()
        stats = receiver.stats()
    finally:
        receiver.stop()
        ctx.db.dispose()

    assert outcomes == ["applied"] * ROUNDS, outcomes
    assert counts["done"] > 20 and counts["refused"] > 0, counts  # hand edits really raced the refreshes
    seqs = [e["sequence"] for e in got]
    assert seqs == list(range(1, len(got) + 1)), "the cursor missed, repeated or reordered an event"
    kinds = {e["type"] for e in got}
    assert kinds >= {"person.created", "person.updated", "person.moved", "person.archived"}, kinds
    assert {e["actor"] for e in got} >= {"cli"} and any(e["run_id"] for e in got)
    assert replay(got) == directory, "the host app's copy differs from the directory"

    wanted = {e["id"] for e in got if e["sequence"] > before_endpoint}
    assert {d["webhook_id"] for d in received} == wanted, "a webhook was lost or invented"
    assert stats["refused"] == 0 and stats["failed"] > 0, stats
    per_person: dict[int, list[int]] = defaultdict(list)
    for d in received:
        per_person[d["payload"]["data"]["person_id"]].append(d["payload"]["data"]["sequence"])
    assert all(s == sorted(s) for s in per_person.values()), "webhooks out of order for a person"
    assert endpoint["status"] == "active"
