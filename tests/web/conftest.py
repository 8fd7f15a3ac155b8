"""Web fixtures: the app served by uvicorn in a thread on a free port, Debian's Chromium through
Playwright (never ``playwright install``), and helpers to sign in and create accounts."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from tests.conftest import env_for

from entrasync.config import Config
from entrasync.runners import background
from entrasync.services import accounts
from entrasync.services.context import Actor, AppContext
from entrasync.web.app import create_app

PASSWORD = "correct horse battery staple"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_ctx(env: dict[str, str], base_url: str) -> AppContext:
    values: dict[str, Any] = {k.removeprefix("ENTRASYNC_").lower(): v for k, v in env.items()}
    values["public_base_url"] = base_url
    return AppContext.create(Config(**values))


def add_account(ctx: AppContext, email: str, roles: list[str], name: str | None = None) -> int:
    person = accounts.create_admin(
        ctx, ctx.org_id(), Actor.cli(), email=email, name=name or email.split("@")[0].title(), password=PASSWORD,
        roles=roles,
    )  # fmt: skip
    return int(person["id"])


@dataclass
class Live:
    url: str
    ctx: AppContext
    emulator: Any

    @property
    def org_id(self) -> int:
        return self.ctx.org_id()


@pytest.fixture
def app_ctx(env: dict[str, str]) -> AppContext:
    """An app context for TestClient tests (redirect URIs on the TestClient's host)."""
    return make_ctx(env, "http://testserver")


@pytest.fixture
def client(app_ctx: AppContext) -> Iterator[TestClient]:
    """The app with a job runner (in-process on SQLite, a worker thread on PostgreSQL), as served."""
    runner = background.for_tests(app_ctx)
    try:
        with TestClient(create_app(app_ctx, runner)) as c:
            yield c
    finally:
        runner.stop()


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token on the page"
    return m.group(1)


def sign_in_client(client: TestClient, email: str, password: str = PASSWORD) -> str:
    """Sign in through the form; returns the session's CSRF token for later writes."""
    page = client.get("/signin")
    r = client.post(
        "/signin", data={"csrf_token": csrf_of(page.text), "email": email, "password": password}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    return str(client.get("/api/v1/me").json()["csrf_token"])


def serve(env: dict[str, str], emulator: Any) -> Iterator[Live]:
    """The app on a real port (uvicorn in a thread) until the generator is closed."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    ctx = make_ctx(env, url)
    runner = background.for_tests(ctx)
    server = uvicorn.Server(
        uvicorn.Config(create_app(ctx, runner), host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    yield Live(url=url, ctx=ctx, emulator=emulator)
    server.should_exit = True
    thread.join(10)
    runner.stop()
    ctx.db.engine.dispose()


@pytest.fixture
def live(env: dict[str, str], emulator: Any) -> Iterator[Live]:
    """The app on a real port (uvicorn in a thread), for the browser."""
    yield from serve(env, emulator)


@pytest.fixture(scope="module")
def module_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One emulator (the small sample tenant) for a module whose tests share one seeded app."""
    from entrasync.emulator.server import start_in_thread

    emu = start_in_thread(users=60, seed=11, data_dir=tmp_path_factory.mktemp("emu"))
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def module_live(module_db_url: str, module_emulator: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The app on a real port for a whole module (seed it once in a module fixture of the test file)."""
    yield from serve(env_for(module_db_url, module_emulator, tmp_path_factory.mktemp("app")), module_emulator)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    # The emulator serves HTTPS with its own generated CA, which Chromium does not know.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, ignore_https_errors=True)
    context.set_default_timeout(15_000)
    pg = context.new_page()
    yield pg
    context.close()


def shot(page: Any, name: str, full_page: bool = True) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def sign_in(page: Any, live: Live, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{live.url}/signin")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_role("heading", name="People").wait_for()


def press_refresh(page: Any, live: Live, timeout: float = 60.0) -> int:
    """Press Refresh on User Sync and wait until that run ends (a worker, or serve's runner, does it);
    the page then shows its outcome. The run's id, from the flash the button leaves."""
    import sqlalchemy as sa

    from entrasync.adapters.db import tables as t

    page.get_by_role("button", name="Refresh").click()
    flash = page.locator(".flash", has_text="Refresh started")
    flash.wait_for()
    m = re.search(r"run (\d+)", flash.inner_text())
    assert m, flash.inner_text()
    run_id = int(m.group(1))
    deadline = time.monotonic() + timeout
    while True:
        with live.ctx.db.reader.connect() as conn:
            outcome = conn.execute(sa.select(t.runs.c.outcome).where(t.runs.c.id == run_id)).scalar_one()
        if outcome != "running":
            break
        assert time.monotonic() < deadline, f"run {run_id} did not end in {timeout} s"
        time.sleep(0.1)
    page.reload()
    return run_id
