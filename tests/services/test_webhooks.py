"""Webhooks (spec §11) on the services tier, against the reference receiver (it verifies every
Standard Webhooks signature with the ``standardwebhooks`` package and fails a share of requests)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta

import pytest
from standardwebhooks.webhooks import Webhook
from tests.services.conftest import Org

from entrasync.domain.webhook_retry import GIVE_UP_AFTER, MAX_DELAY, next_attempt, retry_delay
from entrasync.emulator.webhook_receiver import Receiver, start_receiver
from entrasync.errors import ValidationError
from entrasync.services import notifications, people, webhook_delivery, webhooks
from entrasync.services.context import Actor
from entrasync.services.webhook_targets import TargetRefusedError, check

CLI = Actor.cli()


@pytest.fixture
def org(svc: Org) -> Org:
    svc.ctx.config.webhook_allow_private = True  # the receiver listens on 127.0.0.1
    return svc


def _receiver(fail_rate: float) -> Iterator[Receiver]:
    r = start_receiver("whsec_" + "A" * 32, fail_rate=fail_rate, seed=3)
    try:
        yield r
    finally:
        r.stop()


def _listen(org: Org, receiver: Receiver, **kwargs: object) -> dict[str, object]:
    """Register the receiver as an endpoint and let it verify with that endpoint's secret (the receiver
    is started before its URL, hence the secret, exists)."""
    endpoint, secret = webhooks.create(org.ctx, org.org_id, CLI, url=receiver.url, **kwargs)  # type: ignore[arg-type]
    receiver._webhook = Webhook(secret)
    return endpoint


def _drain(
    org: Org, *, step: timedelta = timedelta(hours=1), passes: int = 60
) -> list[webhook_delivery.DeliveryCounts]:
    """Delivery passes with the scheduling clock moved on each time, until nothing is left to do."""
    now = org.ctx.now()
    done = []
    for _ in range(passes):
        counts = webhook_delivery.deliver_due(org.ctx, now=now, workers=4)
        done.append(counts)
        if counts.attempted == 0 and counts.queued == 0:
            return done
        now += step
    raise AssertionError(f"deliveries did not drain: {done[-3:]}")


def _churn(org: Org) -> list[int]:
    """Joiners and hand edits: several events per person, interleaved."""
    ids = [people.add_person(org.ctx, org.org_id, CLI, {"email": f"p{i}@x.test", "display_name": f"P{i}"})
           for i in range(6)]  # fmt: skip
    for round_ in range(5):
        for i, pid in enumerate(ids):
            people.edit_person(org.ctx, org.org_id, CLI, pid, {"job_title": f"T{round_}.{i}"})
        people.move_person(org.ctx, org.org_id, CLI, ids[round_ + 1], ids[0])
    people.set_status(org.ctx, org.org_id, CLI, ids[5], "archived")
    return ids


def test_a_receiver_failing_30_percent_still_gets_every_event_signed_once_in_order_per_person(org: Org) -> None:
    for receiver in _receiver(fail_rate=0.3):
        endpoint = _listen(org, receiver)
        _churn(org)
        _drain(org)
        got = receiver.received()
        stats = receiver.stats()
    from tests.feed_helpers import all_events

    feed = all_events(org.ctx, org.org_id)
    assert {d["webhook_id"] for d in got} == {e["id"] for e in feed}, "every event, none extra"
    assert stats["refused"] == 0, "every signature verified"
    assert stats["failed"] > 0 and stats["attempts"] > len(feed), stats  # the receiver really failed some
    per_person: dict[int, list[int]] = defaultdict(list)
    for d in got:  # first-arrival order
        per_person[d["payload"]["data"]["person_id"]].append(d["payload"]["data"]["sequence"])
    assert all(seqs == sorted(seqs) for seqs in per_person.values()), per_person
    assert got[0]["payload"]["type"] == "person.created" and got[0]["payload"]["data"]["data"]["person"]["email"]
    detail = webhooks.get(org.ctx, org.org_id, endpoint["id"])
    assert detail["deliveries"] == {"pending": 0, "delivered": len(feed), "failed": 0}
    log = webhooks.attempts_page(org.ctx, org.org_id, endpoint["id"], limit=500).items
    assert len(log) == stats["attempts"] and any(a["status_code"] in (500, 503) for a in log)


def test_an_endpoint_failing_for_3_days_gives_up_and_is_disabled_and_the_admins_are_told(org: Org) -> None:
    admin = people.add_person(org.ctx, org.org_id, CLI, {"email": "hr@x.test", "roles": ["super_admin"]})
    for receiver in _receiver(fail_rate=1.0):
        endpoint = _listen(org, receiver)
        pid = people.add_person(org.ctx, org.org_id, CLI, {"email": "a@x.test"})
        people.edit_person(org.ctx, org.org_id, CLI, pid, {"job_title": "Second"})
        _drain(org, step=timedelta(hours=13), passes=20)
        detail = webhooks.get(org.ctx, org.org_id, endpoint["id"])
        assert detail["status"] == "disabled" and "3 days" in detail["disabled_reason"]
        # The admin's own created event went first; every event of a@x.test's chain waits behind the head.
        assert detail["deliveries"]["failed"] >= 1 and detail["deliveries"]["pending"] >= 1
        notes = notifications.list_for(org.ctx, org.org_id, admin)
        assert any(n["title"] == "Webhook endpoint disabled" and receiver.url in n["body"] for n in notes)
        sent = receiver.stats()["attempts"]
        assert webhook_delivery.deliver_due(org.ctx, now=org.ctx.now() + timedelta(days=9)).attempted == 0
        assert receiver.stats()["attempts"] == sent  # disabled: nothing is sent
        receiver.fail_rate = 0.0
        webhooks.set_enabled(org.ctx, org.org_id, CLI, endpoint["id"], True)
        _drain(org)
        assert webhooks.get(org.ctx, org.org_id, endpoint["id"])["deliveries"]["pending"] == 0
        assert receiver.stats()["accepted"] >= 1


def test_an_endpoint_gets_only_the_types_it_asked_for_and_only_events_after_it_was_made(org: Org) -> None:
    pid = people.add_person(org.ctx, org.org_id, CLI, {"email": "before@x.test"})
    for receiver in _receiver(fail_rate=0.0):
        _listen(org, receiver, event_types=["person.archived"])
        people.edit_person(org.ctx, org.org_id, CLI, pid, {"job_title": "X"})
        people.set_status(org.ctx, org.org_id, CLI, pid, "archived")
        _drain(org)
        assert [d["payload"]["type"] for d in receiver.received()] == ["person.archived"]


def test_two_workers_never_claim_the_same_delivery(org: Org) -> None:
    webhooks.create(org.ctx, org.org_id, CLI, url="http://127.0.0.1:9/none")
    people.add_person(org.ctx, org.org_id, CLI, {"email": "a@x.test"})
    now = org.ctx.now()
    assert webhook_delivery.queue_new(org.ctx, now) == 1
    assert webhook_delivery.queue_new(org.ctx, now) == 0  # queued once
    with org.ctx.write() as uow:
        first = uow.webhooks.claim(now, limit=10, lease=timedelta(minutes=2))
    with org.ctx.write() as uow:
        second = uow.webhooks.claim(now, limit=10, lease=timedelta(minutes=2))
    with org.ctx.write() as uow:
        after_lease = uow.webhooks.claim(now + timedelta(minutes=3), limit=10, lease=timedelta(minutes=2))
    assert len(first) == 1 and second == [] and [c.id for c in after_lease] == [first[0].id]


def test_private_and_malformed_targets_are_refused(svc: Org) -> None:
    def fake(*answers: str):
        return lambda _host, _port: list(answers)

    for bad in ("127.0.0.1", "10.1.2.3", "192.168.0.9", "172.16.4.4", "169.254.169.254", "100.64.0.1", "0.0.0.0",
                "::1", "fe80::1", "fc00::5", "::ffff:127.0.0.1", "224.0.0.1"):  # fmt: skip
        with pytest.raises(TargetRefusedError):
            check("https://hooks.example.com/x", allow_private=False, resolve=fake(bad))
    with pytest.raises(TargetRefusedError):  # every address is checked, not only the first
        check("https://hooks.example.com/x", allow_private=False, resolve=fake("93.184.216.34", "10.0.0.1"))
    check("https://hooks.example.com/x", allow_private=False, resolve=fake("93.184.216.34", "2606:2800:220:1::1"))
    check("https://hooks.example.com/x", allow_private=True, resolve=fake("127.0.0.1"))
    with pytest.raises(ValidationError) as refused:
        webhooks.create(svc.ctx, svc.org_id, CLI, url="http://localhost:8080/hook")
    assert "loopback, link-local or private" in refused.value.errors["url"]
    for url in ("ftp://example.com/x", "https:///nohost", "https://user:pw@example.com/", "http://a b.com/"):
        with pytest.raises(ValidationError):
            webhooks.create(svc.ctx, svc.org_id, CLI, url=url)
    with pytest.raises(ValidationError):
        webhooks.create(svc.ctx, svc.org_id, CLI, url="https://example.com/x", event_types=["person.deleted"])


def test_retries_back_off_exponentially_up_to_3_days() -> None:
    assert retry_delay(1, 0.5) == timedelta(seconds=5)
    assert retry_delay(2, 0.5) == timedelta(seconds=10)
    assert retry_delay(5, 0.5) == timedelta(seconds=80)
    assert retry_delay(30, 0.5) == MAX_DELAY
    assert timedelta(seconds=4) == retry_delay(1, 0.0) and retry_delay(1, 0.999) < timedelta(seconds=6.01)
    start = webhook_delivery.datetime(2024, 1, 1, tzinfo=webhook_delivery.UTC)
    assert next_attempt(start, start + timedelta(hours=1), 3, 0.5) == start + timedelta(hours=1, seconds=20)
    assert next_attempt(start, start + GIVE_UP_AFTER, 20, 0.5) is None


def test_the_deployment_delivers_without_anyone_calling_deliver_due(org: Org) -> None:
    """Deliveries are background work: a Procrastinate worker's periodic job on PostgreSQL, the delivery
    loop of ``entrasync serve`` on SQLite (what cli/serving.py starts for each)."""
    import time

    from entrasync.runners.worker import WorkerThread

    for receiver in _receiver(fail_rate=0.0):
        _listen(org, receiver)
        ids = _churn(org)
        if org.ctx.db.dialect == "postgresql":
            org.ctx.config = org.ctx.config.model_copy(update={"tick_seconds": 1})
            runner: WorkerThread | webhook_delivery.DeliveryLoop = WorkerThread(org.ctx).start()
        else:
            runner = webhook_delivery.DeliveryLoop(org.ctx, interval=0.1).start()
        try:
            from tests.feed_helpers import all_events

            expected = {e["id"] for e in all_events(org.ctx, org.org_id)}
            deadline = time.monotonic() + 60
            while {d["webhook_id"] for d in receiver.received()} != expected:
                assert time.monotonic() < deadline, "the background deliveries did not arrive"
                time.sleep(0.2)
        finally:
            runner.stop()
        assert len(ids) == 6 and len(receiver.received()) == len(expected)  # each once
