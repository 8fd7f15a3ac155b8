"""Every call the benchmark makes into entrasync, in one module.

Why one module: the product's internal layout changes (services are being reorganised) while the
benchmark must keep measuring the same things. Everything else under ``bench/`` talks to the product
only through the functions below, to the database only through SQLAlchemy reflection of the migrated
schema, and to Graph only over HTTP; so adapting the benchmark to a new layout means editing this
file alone. Each function says which product call it wraps today.

Imports of ``entrasync`` are inside the functions: importing this module costs nothing, and the
orchestrator (``bench/run.py``) stays a small process that never loads the product's services.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # type hints only: never imported at run time from here
    from sqlalchemy import Engine

    from entrasync.services.context import AppContext

# The application secret key the benchmark's contexts use: the CLI process must use the same one to
# decrypt the client secret stored by ``connect``.
SECRET_KEY = "entrasync-bench-secret-key"
PUBLIC_BASE_URL = "http://testserver"

EmulatorInfo = Mapping[str, str]  # the JSON line ``entrasync emulator --port 0`` prints
Progress = Callable[[str, dict[str, Any]], None]
ServiceCase = tuple[str, Callable[[], Any]]  # each call opens its own read transaction, as the pages do


# ---- what the product reads from Graph ----------------------------------------------------------


@dataclass(frozen=True)
class UserQuery:
    """The query options of the product's full user listing, so the floor readers send the same."""

    select: str  # comma-separated Graph properties ($select)
    expand: str  # $expand of the manager
    page_size: int  # $top

    def params(self) -> dict[str, str | int | bool]:
        return {"$select": self.select, "$expand": self.expand, "$top": self.page_size}

    @property
    def fields(self) -> list[str]:
        return self.select.split(",")


def user_query() -> UserQuery:
    """Wraps ``entrasync.adapters.graph.reader.USER_SELECT``, ``MANAGER_EXPAND`` and ``PAGE_SIZE``."""
    from entrasync.adapters.graph import reader

    return UserQuery(reader.USER_SELECT, reader.MANAGER_EXPAND, reader.PAGE_SIZE)


def encode_query(params: Mapping[str, str | int | bool]) -> str:
    """The product's query-string encoding (``entrasync.adapters.graph.client.encode_query``), so a
    floor's URL is byte for byte the product's."""
    from entrasync.adapters.graph.client import encode_query as encode

    return encode(params)


def deleted_users_path() -> str:
    """The soft-deleted users listing a refresh reads every run (``reader._soft_deleted_ids``)."""
    return "/directory/deletedItems/microsoft.graph.user"


# ---- command lines -------------------------------------------------------------------------------


def _entrasync_exe() -> str:
    return str(Path(sys.executable).with_name("entrasync"))


def emulator_command(users: int, data_dir: Path) -> list[str]:
    """``entrasync emulator --users N --port 0``: prints one JSON line (urls, ids, secret, CA)."""
    return [_entrasync_exe(), "emulator", "--users", str(users), "--port", "0", "--data-dir", str(data_dir)]


def process_env(info: EmulatorInfo, db_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The ``ENTRASYNC_*`` environment that points an entrasync process at the benchmark's database and
    emulator (the same configuration :func:`make_context` builds in process), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENTRASYNC_")}
    env.update(
        ENTRASYNC_DATA_DIR=str(data_dir),
        ENTRASYNC_DATABASE_URL=db_url,
        ENTRASYNC_GRAPH_URL=info["graph_url"],
        ENTRASYNC_LOGIN_URL=info["login_url"],
        ENTRASYNC_CA_BUNDLE=info["ca_bundle"],
        ENTRASYNC_CLIENT_ID=info["client_id"],
        ENTRASYNC_CLIENT_SECRET=info["client_secret"],
        ENTRASYNC_SECRET_KEY=SECRET_KEY,
        ENTRASYNC_PUBLIC_BASE_URL=PUBLIC_BASE_URL,
        **extra,
    )
    return env


def cli_refresh_command(info: EmulatorInfo, db_url: str, data_dir: Path) -> tuple[list[str], dict[str, str]]:
    """``entrasync refresh --json`` and the environment of :func:`process_env`."""
    return [_entrasync_exe(), "refresh", "--json"], process_env(info, db_url, data_dir)


_CLI_MODULES = r"""
import atexit, json, sys
def _modules():
    mods = [m for m in list(sys.modules) if m.split(".")[0] not in ("entrasync", "__main__")]
    sys.stderr.write("\n@@modules " + json.dumps(mods) + "\n")
atexit.register(_modules)
from entrasync.cli.main import main
sys.argv = ["entrasync", "refresh", "--json"]
sys.exit(main())
"""

_IMPORT_FLOOR = r"""
import importlib, json, sys
failed = 0
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except Exception:
        failed += 1
print(json.dumps({"modules": len(sys.modules), "failed": failed}))
"""


def cli_modules(info: EmulatorInfo, db_url: str, data_dir: Path) -> list[str]:
    """Every module but entrasync's own that an ``entrasync refresh --json`` process loads (the standard
    library's and the installed libraries'), in the order it loaded them: one refresh, untimed."""
    env = process_env(info, db_url, data_dir)
    proc = subprocess.run([sys.executable, "-c", _CLI_MODULES], env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or "@@modules " not in proc.stderr:
        raise RuntimeError(f"entrasync refresh (modules) failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    line = proc.stderr.rsplit("@@modules ", 1)[1].splitlines()[0]
    return list(json.loads(line))


def import_floor_command(modules: list[str]) -> list[str]:
    """A fresh interpreter that imports ``modules`` and exits: the CLI process's floor, the libraries it
    loads with none of entrasync's code and no work (a module that cannot be imported alone, such as
    an alias another module made, is skipped and counted)."""
    return [sys.executable, "-c", _IMPORT_FLOOR, json.dumps(modules)]


def byte_compile() -> str:
    """Byte-compile the installed ``entrasync`` package (``compileall``), so that a timed CLI process
    reads cached bytecode as after ``pip install``: an editable install under PYTHONDONTWRITEBYTECODE=1
    (set on some machines) would otherwise compile every module it imports, in every process."""
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("entrasync")
    if spec is None or not spec.submodule_search_locations:
        return "entrasync not found"
    where = next(iter(spec.submodule_search_locations))
    ok = compileall.compile_dir(where, quiet=1)
    return f"{where} ({'ok' if ok else 'some modules failed'})"


# ---- many organisations (bench/orgs.py) ----------------------------------------------------------


def multi_tenant_emulator_command(tenants: int, min_users: int, max_users: int, seed: int, data_dir: Path) -> list[str]:
    """``entrasync emulator --tenants N --min-users A --max-users B --seed S --port 0``: its ready line
    names ``tenants_file`` (each tenant's id and size)."""
    return [_entrasync_exe(), "emulator", "--tenants", str(tenants), "--min-users", str(min_users), "--max-users",
            str(max_users), "--seed", str(seed), "--port", "0", "--data-dir", str(data_dir)]  # fmt: skip


def worker_command(concurrency: int) -> list[str]:
    """``entrasync worker --concurrency N``: prints one JSON line when ready, stops on SIGTERM."""
    return [_entrasync_exe(), "worker", "--concurrency", str(concurrency)]


def create_connected_orgs(ctx: AppContext, info: EmulatorInfo, tenant_ids: list[str]) -> list[int]:
    """One organisation per tenant (``services.orgs.create``, slug ``t{i}``), connected with the
    emulator's multi-tenant app registration (``services.connection.connect``; the credential is stored
    without a Graph round trip, as ten thousand set-up requests would only time the emulator)."""
    from entrasync.services import connection, orgs
    from entrasync.services.context import Actor

    ids = []
    for i, tenant in enumerate(tenant_ids):
        org = orgs.create(ctx, f"t{i}", f"Tenant {i}")
        creds = connection.Credentials(tenant, info["client_id"], info["client_secret"])
        connection.connect(ctx, org, Actor.cli(), creds, verify=False)
        ids.append(org)
    return ids


def dead_run_message() -> str:
    """What a run whose worker died says (``services.refresh_jobs.DEAD_RUN_MESSAGE``)."""
    from entrasync.services import refresh_jobs

    return refresh_jobs.DEAD_RUN_MESSAGE


def admin_client(info: EmulatorInfo) -> Any:
    """The emulator's admin API (``entrasync.emulator.admin_client.AdminClient``): tenant changes and
    request counters."""
    from entrasync.emulator.admin_client import AdminClient

    return AdminClient(info["admin_url"], info["ca_bundle"], timeout=120)


# ---- database ------------------------------------------------------------------------------------


def bulk_write_pragmas(dialect: str) -> list[str]:
    """What the product sets on a connection before a large write (SQLite: a wider page cache for that
    transaction); the write floor sets the same, so it measures the database as the product runs it."""
    from entrasync.adapters.db.engine import BULK_CACHE_KIB

    return [f"PRAGMA cache_size = -{BULK_CACHE_KIB}"] if dialect == "sqlite" else []


def make_engine(db_url: str) -> Engine:
    """The product's engine (``entrasync.adapters.db.engine.make_engine``): on SQLite it applies the
    product's pragmas (WAL, synchronous=NORMAL, foreign_keys=ON, BEGIN IMMEDIATE for writers), which
    the write floor must share."""
    from entrasync.adapters.db.engine import make_engine as make

    return make(db_url)


# ---- the application -----------------------------------------------------------------------------


def make_context(info: EmulatorInfo, db_url: str, data_dir: Path) -> AppContext:
    """``AppContext.create(Config(...))`` configured for the emulator.

    This is also how the benchmark migrates a fresh database (product runs and write-floor targets
    alike): ``AppContext.create`` runs the product's migration entry point
    (``adapters.db.engine.migrate``), so the floor writes into exactly the schema the product has.
    """
    from entrasync.config import Config
    from entrasync.services.context import AppContext

    config = Config(
        data_dir=data_dir,
        database_url=db_url,
        graph_url=info["graph_url"],
        login_url=info["login_url"],
        ca_bundle=Path(info["ca_bundle"]),
        client_id=info["client_id"],
        client_secret=info["client_secret"],
        secret_key=SECRET_KEY,
        public_base_url=PUBLIC_BASE_URL,
    )
    return AppContext.create(config)


def org_id(ctx: AppContext) -> int:
    """The CLI's default organisation (``AppContext.org_id()``; created on first use)."""
    return int(ctx.org_id())


def engine(ctx: AppContext) -> Engine:
    """The context's engine (``AppContext.db.engine``)."""
    return ctx.db.engine


def close(ctx: AppContext) -> None:
    """Close the context's pooled connections (``AppContext.db.dispose()``)."""
    ctx.db.dispose()


def connect(ctx: AppContext, org: int, info: EmulatorInfo) -> None:
    """``services.connection.connect`` with the emulator's app registration (verified with one read)."""
    from entrasync.services import connection
    from entrasync.services.context import Actor

    creds = connection.Credentials(info["tenant_id"], info["client_id"], info["client_secret"])
    connection.connect(ctx, org, Actor.cli(), creds)


def refresher(ctx: AppContext, org: int) -> Callable[[Progress], dict[str, Any]]:
    """A ready-to-time ``services.sync.refresh(ctx, org, trigger="cli", actor=Actor.cli(), on_progress=...)``.

    Returned as a function so that importing the sync service happens here, before the caller starts
    its timer (a first import of the services costs tens of milliseconds, which no refresh in a
    running server pays). The progress callback receives the phases ``reading``, ``planning``,
    ``applying`` and ``done``; the benchmark splits the wall time there. The function returns the
    fields of ``RefreshResult`` the report uses.
    """
    from entrasync.runners import tuning
    from entrasync.services import sync
    from entrasync.services.context import Actor

    def run(on_progress: Progress) -> dict[str, Any]:
        with tuning.refresh_process():  # as `entrasync refresh` and the worker's refresh job enter it
            result = sync.refresh(ctx, org, trigger="cli", actor=Actor.cli(), on_progress=on_progress)
        return {
            "outcome": result.outcome,
            "requests": result.graph_requests,
            "read_mode": result.read_mode,
            "counts": result.counts,
            "error": result.error,
        }

    return run


@contextmanager
def full_reader(info: EmulatorInfo, token: str) -> Iterator[Callable[[], tuple[int, int]]]:
    """A ready-to-time full read, as a first sync makes it: ``adapters.graph.reader.fetch_snapshot``
    with no cursor, on the product's ``adapters.graph.client.GraphClient`` with a fixed token.

    The function returns (users read, Graph requests made). Imports and the client are set up
    before it is returned, outside the caller's timer.
    """
    from entrasync.adapters.graph.client import GraphClient, GraphConfig
    from entrasync.adapters.graph.reader import fetch_snapshot
    from entrasync.runners import tuning

    cfg = GraphConfig(
        graph_url=info["graph_url"],
        login_url=info["login_url"],
        tenant_id=info["tenant_id"],
        client_id=info["client_id"],
        client_credential=info["client_secret"],
        ca_bundle=info["ca_bundle"],
    )
    with GraphClient(cfg, token_provider=lambda: token) as client:

        def read() -> tuple[int, int]:
            with tuning.refresh_process():
                result = fetch_snapshot(client, graph_filter=None, group_ids=None, cursor=None)
            return len(result.snapshot.users), int(result.requests)

        yield read


# ---- pages (what the web handlers call) ----------------------------------------------------------


@dataclass(frozen=True)
class PageFacts:
    """What the page timings need to know about the directory after the four scenarios."""

    pending_run: int | None  # the held 15% plan waiting for review
    first_run: int | None  # the first sync's run (its 100,000-row plan)
    people_active: int
    people_rows: int
    newest_email: str  # of the newest person: a search with exactly one hit


def page_facts(ctx: AppContext, org: int) -> PageFacts:
    """Wraps ``services.review.pending_run`` and ``services.people.list_people``; counts and the probe
    e-mail come from ``adapters.db.tables``."""
    import sqlalchemy as sa

    from entrasync.adapters.db import tables as t
    from entrasync.services import people, review

    run = review.pending_run(ctx, org)
    active = people.list_people(ctx, org, per_page=1).total
    with ctx.db.engine.connect() as conn:
        first = conn.execute(sa.select(sa.func.min(t.runs.c.id)).where(t.runs.c.org_id == org)).scalar_one()
        everyone = conn.execute(sa.select(sa.func.count()).select_from(t.people)).scalar_one()
        probe = conn.execute(
            sa.select(t.people.c.email).where(t.people.c.org_id == org).order_by(t.people.c.id.desc()).limit(1)
        ).scalar_one()
    return PageFacts(run["id"] if run else None, first, int(active), int(everyone), str(probe))


def service_cases(ctx: AppContext, org: int, facts: PageFacts, *, deep: int, common: str) -> list[ServiceCase]:
    """The service calls behind the People list and the User Sync tabs (each opens its own read).

    Wraps ``services.people.list_people``, ``services.review.plan_changes`` (per ``review.TABS``),
    ``services.review.tab_counts`` and ``services.review.matched``.
    """
    from entrasync.services import people, review

    per_page = 50
    rare = facts.newest_email.split("@")[0]
    cases: list[ServiceCase] = [
        ("people p1", lambda: people.list_people(ctx, org, page=1, per_page=per_page)),
        (f"people p{deep}", lambda: people.list_people(ctx, org, page=deep, per_page=per_page)),
        ("people all-status p1", lambda: people.list_people(ctx, org, status="all", page=1, per_page=per_page)),
        (f"people search '{common}' p1", lambda: people.list_people(ctx, org, search=common, per_page=per_page)),
        (f"people search '{common}' p5", lambda: people.list_people(ctx, org, search=common, page=5, per_page=50)),
        ("people search (1 hit)", lambda: people.list_people(ctx, org, search=rare, per_page=per_page)),
    ]
    rid = facts.pending_run
    if rid is not None:
        run_id = rid
        run = review.pending_run(ctx, org) or {"id": rid}

        def tab_page(tab: str, **kw: Any) -> Callable[[], Any]:
            return lambda: review.plan_changes(ctx, org, run_id, tab=tab, **kw)

        for tab in review.TABS:
            cases.append((f"tab {tab} p1", tab_page(tab)))
            cases.append((f"tab {tab} p20", tab_page(tab, page=20)))
            cases.append((f"tab {tab} search", tab_page(tab, search=common)))
        cases.append(("tab counts", lambda: review.tab_counts(ctx, org, run_id)))
        cases += [
            ("tab matched p1", lambda: review.matched(ctx, org, run, search=None, page=1, per_page=per_page)),
            (f"tab matched p{deep}", lambda: review.matched(ctx, org, run, search=None, page=deep, per_page=per_page)),
            ("tab matched search", lambda: review.matched(ctx, org, run, search=common, page=1, per_page=per_page)),
        ]
    first = facts.first_run
    if first is not None:
        first_run = first
        cases.append(
            ("first-sync plan: entra_only p1", lambda: review.plan_changes(ctx, org, first_run, tab="entra_only"))
        )
        cases.append(
            (
                f"first-sync plan: entra_only p{deep}",
                lambda: review.plan_changes(ctx, org, first_run, tab="entra_only", page=deep),
            )
        )
    return cases


def create_admin(ctx: AppContext, org: int, *, email: str, name: str, password: str) -> None:
    """``services.accounts.create_admin`` with both roles (Super admin and IT admin)."""
    from entrasync.services import accounts
    from entrasync.services.context import Actor

    accounts.create_admin(
        ctx, org, Actor.cli(), email=email, name=name, password=password, roles=["super_admin", "it_admin"]
    )


def create_app(ctx: AppContext) -> Any:
    """The FastAPI application (``entrasync.web.app.create_app``); raises ImportError without it."""
    from entrasync.web.app import create_app as make_app

    return make_app(ctx)


def tab_names() -> tuple[str, ...]:
    """The User Sync tabs that list changes (``services.review.TABS``) plus ``matched``."""
    from entrasync.services import review

    return (*review.TABS, "matched")


# ---- the change feed and webhooks (issue 15, bench/feed.py) ------------------------------------------


FEED_SECONDS: list[float] = []  # time spent inside append_applied during change_feed(True) blocks


@contextmanager
def change_feed(enabled: bool) -> Iterator[None]:
    """With ``enabled`` False, a refresh's apply writes no events: ``adapters.db.events_repo.EventsRepo.
    append_applied`` (the one call ``DirectoryWriter.apply`` makes into the feed) is replaced by a no-op
    for the block, which is what "a first sync without events" means in bench/feed.py. With ``enabled``
    it runs as is, timed into :data:`FEED_SECONDS` (the feed's own share, which load on a shared machine
    distorts far less than the difference of two whole refreshes)."""
    import time

    from entrasync.adapters.db.events_repo import EventsRepo

    original = EventsRepo.append_applied

    def timed(self: Any, *args: Any, **kwargs: Any) -> int:
        t0 = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            FEED_SECONDS.append(time.perf_counter() - t0)

    EventsRepo.append_applied = timed if enabled else (lambda *_a, **_k: 0)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        EventsRepo.append_applied = original  # type: ignore[method-assign]


def event_count(ctx: AppContext, org: int) -> int:
    """How many events the organisation's feed holds (``EventsRepo.last_seq``: sequences have no gaps)."""
    with ctx.read() as uow:
        return int(uow.events.last_seq(org))


def create_webhook(ctx: AppContext, org: int, url: str) -> str:
    """``services.webhooks.create`` for every event type; returns the signing secret. The benchmark's
    receiver listens on 127.0.0.1, so private targets are allowed on this context."""
    from entrasync.services import webhooks
    from entrasync.services.context import Actor

    ctx.config.webhook_allow_private = True
    _record, secret = webhooks.create(ctx, org, Actor.cli(), url=url)
    return secret


def deliverer(ctx: AppContext, workers: int) -> Callable[[], dict[str, int]]:
    """One ``services.webhook_delivery.deliver_due`` pass on a kept HTTP client (what a delivery job
    runs); returns its counts."""
    from entrasync.services import webhook_delivery

    client = webhook_delivery.client_for(ctx, workers)

    def run() -> dict[str, int]:
        return webhook_delivery.deliver_due(ctx, client=client, workers=workers, limit=500).public()

    return run
