"""The reference webhook receiver: Standard Webhooks verification, injected failures, records."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from standardwebhooks import Webhook

from entrasync.emulator.webhook_receiver import Receiver, start_receiver

SECRET = "whsec_" + base64.b64encode(b"entrasync-test-secret-0123456789").decode()


def _signed(
    msg_id: str, payload: dict[str, object], when: datetime | None = None, secret: str = SECRET
) -> dict[str, str]:
    when = when or datetime.now(UTC)
    body = json.dumps(payload)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, when, body),
        "content-type": "application/json",
    }


def _post(
    client: httpx.Client,
    url: str,
    msg_id: str,
    payload: dict[str, object],
    when: datetime | None = None,
    secret: str = SECRET,
) -> httpx.Response:
    headers = _signed(msg_id, payload, when, secret)
    return client.post(url, content=json.dumps(payload), headers=headers)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = start_receiver(SECRET)
    yield r
    r.stop()


def test_good_signatures_are_accepted_and_recorded_in_order(receiver: Receiver) -> None:
    with httpx.Client(trust_env=False) as c:
        for i in range(3):
            assert _post(c, receiver.url, f"msg_{i}", {"type": "person.created", "seq": i}).status_code == 204
        assert _post(c, receiver.url, "msg_1", {"type": "person.created", "seq": 1}).status_code == 204  # a retry
    received = receiver.received()
    assert [d["webhook_id"] for d in received] == ["msg_0", "msg_1", "msg_2"]
    assert [d["payload"]["seq"] for d in received] == [0, 1, 2]
    assert [d["copies"] for d in received] == [1, 2, 1]  # the duplicate is visible
    assert receiver.stats() == {"attempts": 4, "accepted": 4, "failed": 0, "refused": 0, "unique": 3, "duplicates": 1}


def test_bad_signature_and_expired_timestamp_are_refused(receiver: Receiver) -> None:
    payload = {"type": "person.updated"}
    other = "whsec_" + base64.b64encode(b"another-secret-entirely-1234567").decode()
    with httpx.Client(trust_env=False) as c:
        assert _post(c, receiver.url, "msg_bad", payload, secret=other).status_code == 401
        old = datetime.now(UTC) - timedelta(minutes=10)
        assert _post(c, receiver.url, "msg_old", payload, when=old).status_code == 401
        tampered = _signed("msg_t", payload)
        assert c.post(receiver.url, content=b'{"type": "x"}', headers=tampered).status_code == 401
        assert c.post(receiver.url, content=b"{}", headers={"webhook-id": "msg_n"}).status_code == 401
        garbled = {**_signed("msg_g", payload), "webhook-signature": "nonsense"}
        assert c.post(receiver.url, content=json.dumps(payload), headers=garbled).status_code == 401
    assert receiver.received() == []
    attempts = receiver.attempts()
    assert len(attempts) == 5 and {a["outcome"] for a in attempts} == {"refused"}
    assert all(a["status"] == 401 and a["reason"] for a in attempts)
    assert "too old" in attempts[1]["reason"]


def _run(fail_rate: float, seed: int, ids: list[str]) -> list[int]:
    r = start_receiver(SECRET, fail_rate=fail_rate, seed=seed)
    try:
        with httpx.Client(trust_env=False) as c:
            return [_post(c, r.url, mid, {"n": mid}).status_code for mid in ids]
    finally:
        r.stop()


def test_fail_rate_is_approximate_and_deterministic() -> None:
    ids = [f"msg_{i}" for i in range(400)]
    first = _run(0.3, 7, ids)
    assert set(first) <= {204, 500, 503} and {500, 503} <= set(first)
    share = sum(s != 204 for s in first) / len(first)
    assert 0.22 < share < 0.38
    assert _run(0.3, 7, ids) == first  # same seed, same answers
    assert _run(0.3, 8, ids) != first  # another seed, other answers
    assert set(_run(0.0, 7, ids[:20])) == {204}


def test_failed_attempts_then_delivery_are_recorded_per_id() -> None:
    r = start_receiver(SECRET, fail_rate=0.5, seed=3)
    try:
        with httpx.Client(trust_env=False) as c:
            for mid in ("evt_a", "evt_b", "evt_c", "evt_d"):
                for _ in range(20):  # retry until delivered, as a sender does
                    if _post(c, r.url, mid, {"id": mid}).status_code == 204:
                        break
        received = {d["webhook_id"]: d for d in r.received()}
        assert set(received) == {"evt_a", "evt_b", "evt_c", "evt_d"}
        attempts = r.attempts()
        for mid, delivery in received.items():
            mine = [a for a in attempts if a["webhook_id"] == mid]
            assert delivery["attempts"] == len(mine) and delivery["copies"] == 1
            assert [a["outcome"] for a in mine][-1] == "accepted"
            assert [a["attempt"] for a in mine] == list(range(1, len(mine) + 1))
        assert any(a["outcome"] == "failed" for a in attempts)
        with httpx.Client(trust_env=False) as c:
            assert c.get(f"{r.admin_url}/stats").json()["unique"] == 4
    finally:
        r.stop()


def test_slow_answers() -> None:
    import time

    r = start_receiver(SECRET, slow_rate=1.0, slow_seconds=0.3)
    try:
        with httpx.Client(trust_env=False) as c:
            started = time.perf_counter()
            assert _post(c, r.url, f"msg_{uuid.uuid4()}", {}).status_code == 204
            assert time.perf_counter() - started >= 0.3
    finally:
        r.stop()


def test_cli_prints_one_ready_line() -> None:
    cmd = [sys.executable, "-m", "entrasync.emulator.webhook_receiver", "--secret", SECRET, "--fail-rate", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        with httpx.Client(trust_env=False) as c:
            assert _post(c, ready["url"], "msg_cli", {"ok": True}).status_code == 204
            received = c.get(f"{ready['admin_url']}/received").json()
            assert [d["webhook_id"] for d in received] == ["msg_cli"]
            assert c.delete(f"{ready['admin_url']}/records").status_code == 204
            assert c.get(f"{ready['admin_url']}/received").json() == []
    finally:
        proc.terminate()
        assert proc.wait(15) == 0


def test_signed_body_that_is_not_json_is_kept_as_text(receiver: Receiver) -> None:
    when = datetime.now(UTC)
    headers = {
        "webhook-id": "msg_text",
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(SECRET).sign("msg_text", when, "plain text"),
    }
    with httpx.Client(trust_env=False) as c:
        assert c.post(receiver.url, content=b"plain text", headers=headers).status_code == 204
        assert c.get(receiver.url).status_code == 405
    assert receiver.received()[0]["payload"] == "plain text"
