"""A reference webhook receiver for tests and benchmarks (PRODUCT.md §11): it verifies Standard Webhooks
signatures, can be told to fail a share of requests, and records what it got.

Standard Webhooks (https://www.standardwebhooks.com, https://github.com/standard-webhooks/standard-webhooks
spec/standard-webhooks.md): each delivery carries ``webhook-id``, ``webhook-timestamp`` (Unix seconds)
and ``webhook-signature`` (``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, space-separated
when several); a receiver refuses a bad signature or a timestamp more than five minutes off, and any
2xx answer means delivered. Verification is the ``standardwebhooks`` package's (the ``test`` extra).

Failures are deterministic: the n-th attempt of message ``id`` fails when a hash of (seed, id, n) falls
under ``fail_rate``, whatever order concurrent deliveries arrive in; a failure answers 500 or 503.
``slow_rate`` / ``slow_seconds`` delay that share of answers the same way.

    receiver = start_receiver("whsec_...", fail_rate=0.3, seed=1)
    ... deliver to receiver.url ...
    receiver.received()   # verified, accepted deliveries, first-arrival order, with copy counts
    receiver.attempts()   # every request: accepted, failed (injected) or refused (bad signature)
    receiver.stop()

CLI: ``python -m entrasync.emulator.webhook_receiver --secret S --port P --fail-rate 0.3`` prints one
JSON line (``url``, ``admin_url``) and serves until SIGINT/SIGTERM; ``GET {admin_url}/received``,
``/attempts`` and ``/stats`` read the records (``DELETE {admin_url}/records`` clears them).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import signal
import socket
import sys
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import orjson
import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.types import Message, Receive, Scope, Send

ADMIN_PREFIX = "/_receiver"
FAIL_STATUSES = (500, 503)


@dataclass(slots=True)
class Attempt:
    webhook_id: str | None
    timestamp: str | None
    attempt: int  # 1 for the first request carrying this webhook-id
    status: int  # what the receiver answered
    outcome: str  # "accepted" | "failed" (injected failure) | "refused" (signature or timestamp)
    reason: str | None
    received_at: float
    path: str


@dataclass(slots=True)
class Delivery:
    webhook_id: str
    payload: Any
    copies: int  # accepted (2xx) copies: more than one is an at-least-once duplicate
    attempts: int  # every request with this id, failed and refused ones included
    first_received_at: float


def _fraction(*parts: object) -> float:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class Receiver:
    def __init__(
        self,
        secret: str,
        *,
        fail_rate: float = 0.0,
        seed: int = 1,
        slow_rate: float = 0.0,
        slow_seconds: float = 0.0,
    ) -> None:
        if not 0.0 <= fail_rate <= 1.0 or not 0.0 <= slow_rate <= 1.0:
            raise ValueError("fail_rate and slow_rate must be between 0 and 1")
        self._webhook = Webhook(secret)
        self.fail_rate, self.seed = fail_rate, seed
        self.slow_rate, self.slow_seconds = slow_rate, slow_seconds
        self.url = ""
        self.admin_url = ""
        self._lock = threading.Lock()
        self._attempts: list[Attempt] = []
        self._deliveries: dict[str, Delivery] = {}
        self._tries: dict[str, int] = {}
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # -- records ---------------------------------------------------------------------------------
    def received(self) -> list[dict[str, Any]]:
        """Verified, accepted deliveries in order of first arrival, one per webhook-id."""
        with self._lock:
            return [asdict(d) for d in self._deliveries.values()]

    def attempts(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(a) for a in self._attempts]

    def stats(self) -> dict[str, int]:
        with self._lock:
            outcomes = [a.outcome for a in self._attempts]
            return {
                "attempts": len(outcomes),
                "accepted": outcomes.count("accepted"),
                "failed": outcomes.count("failed"),
                "refused": outcomes.count("refused"),
                "unique": len(self._deliveries),
                "duplicates": sum(d.copies - 1 for d in self._deliveries.values()),
            }

    def reset(self) -> None:
        with self._lock:
            self._attempts.clear()
            self._deliveries.clear()
            self._tries.clear()

    # -- HTTP ------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path.startswith(ADMIN_PREFIX):
            await self._admin(scope, send, path[len(ADMIN_PREFIX) :])
            return
        body = b""
        while True:
            message: Message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] != "POST":
            await _answer(send, 405, {"error": "POST only"})
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        msg_id = headers.get("webhook-id")
        with self._lock:
            n = self._tries.get(msg_id or "", 0) + 1
            self._tries[msg_id or ""] = n
        status, payload = self._handle(body, headers, path, n)
        if self.slow_rate > 0 and _fraction(self.seed, "slow", msg_id, n) < self.slow_rate:
            await asyncio.sleep(self.slow_seconds)
        await _answer(send, status, payload)

    def _handle(self, body: bytes, headers: dict[str, str], path: str, n: int) -> tuple[int, Any]:
        msg_id = headers.get("webhook-id")
        now = time.time()
        try:
            self._webhook.verify(body, headers, json_parse=False)
        except (WebhookVerificationError, ValueError, UnicodeDecodeError) as exc:
            self._record(Attempt(msg_id, headers.get("webhook-timestamp"), n, 401, "refused", str(exc), now, path))
            return 401, {"error": str(exc)}
        assert msg_id is not None  # verify() requires it
        try:
            data: Any = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = body.decode()  # signed, but not JSON: kept as text
        if self.fail_rate > 0 and _fraction(self.seed, msg_id, n) < self.fail_rate:
            status = FAIL_STATUSES[int(_fraction(self.seed, "status", msg_id, n) * len(FAIL_STATUSES))]
            self._record(Attempt(msg_id, headers.get("webhook-timestamp"), n, status, "failed", "injected", now, path))
            return status, {"error": "injected failure"}
        self._record(Attempt(msg_id, headers.get("webhook-timestamp"), n, 204, "accepted", None, now, path), data)
        return 204, None

    def _record(self, attempt: Attempt, payload: Any = None) -> None:
        with self._lock:
            self._attempts.append(attempt)
            wid = attempt.webhook_id
            delivery = self._deliveries.get(wid) if wid else None
            if delivery is not None:
                delivery.attempts = self._tries.get(wid or "", delivery.attempts)
                if attempt.outcome == "accepted":
                    delivery.copies += 1
            elif wid and attempt.outcome == "accepted":
                self._deliveries[wid] = Delivery(wid, payload, 1, attempt.attempt, attempt.received_at)

    async def _admin(self, scope: Scope, send: Send, sub: str) -> None:
        if scope["method"] == "DELETE" and sub == "/records":
            self.reset()
            await _answer(send, 204, None)
        elif sub == "/received":
            await _answer(send, 200, self.received())
        elif sub == "/attempts":
            await _answer(send, 200, self.attempts())
        elif sub == "/stats":
            await _answer(send, 200, self.stats())
        else:
            await _answer(send, 404, {"error": "not found"})

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0) -> Receiver:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle (PRODUCT.md Appendix B)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
        shown = f"[{host}]" if ":" in host else host
        base = f"http://{shown}:{sock.getsockname()[1]}"
        self.url, self.admin_url = f"{base}/webhook", f"{base}{ADMIN_PREFIX}"
        config = uvicorn.Config(
            self, http="httptools", loop="asyncio", lifespan="off", log_level="warning", access_log=False
        )
        server = self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])), name="webhook-receiver", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("webhook receiver did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _answer(send: Send, status: int, payload: Any) -> None:
    body = b"" if payload is None else orjson.dumps(payload)
    headers = [(b"content-length", str(len(body)).encode())]
    if body:
        headers.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def start_receiver(
    secret: str,
    fail_rate: float = 0.0,
    seed: int = 1,
    *,
    slow_rate: float = 0.0,
    slow_seconds: float = 0.0,
    host: str = "127.0.0.1",
    port: int = 0,
) -> Receiver:
    """Start a receiver in a daemon thread; ``.url`` is where to deliver, ``.stop()`` ends it."""
    receiver = Receiver(secret, fail_rate=fail_rate, seed=seed, slow_rate=slow_rate, slow_seconds=slow_seconds)
    return receiver.start(host, port)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Standard Webhooks reference receiver (tests, benchmarks).")
    parser.add_argument("--secret", required=True, help="The endpoint secret, whsec_...")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="share of requests answered 500/503")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--slow-rate", type=float, default=0.0, help="share of answers delayed")
    parser.add_argument("--slow-seconds", type=float, default=0.0)
    args = parser.parse_args(argv)
    receiver = start_receiver(
        args.secret,
        args.fail_rate,
        args.seed,
        slow_rate=args.slow_rate,
        slow_seconds=args.slow_seconds,
        host=args.host,
        port=args.port,
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sys.stdout.write(json.dumps({"url": receiver.url, "admin_url": receiver.admin_url}) + "\n")
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        receiver.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
