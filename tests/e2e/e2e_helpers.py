"""Driving the CLI in-process and checking the directory against the emulator's tenant."""

from __future__ import annotations

from typing import Any

import click
import orjson
from click.testing import CliRunner

from entrasync.adapters.graph.auth import PROCESS_TOKENS
from entrasync.cli.main import run

runner = CliRunner()


@click.command(add_help_option=False, context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def entrasync(ctx: click.Context) -> None:
    """The console script as a click command, so CliRunner captures it: ``entrasync.cli.main.run``. Each
    command starts as its own process would, holding no access token from an earlier one."""
    PROCESS_TOKENS.clear()
    raise SystemExit(run(list(ctx.args)))


class CliFailed(AssertionError):
    pass


def cli(env: dict[str, str], *args: str, ok: bool = True, input: str | None = None) -> Any:
    """Run ``entrasync ARGS --json``; return the parsed JSON (or the result when ``ok`` is False)."""
    result = runner.invoke(entrasync, [*args, "--json"], env=env, input=input, catch_exceptions=False)
    if not ok:
        return result
    if result.exit_code not in (0, 3, 4):  # 3 awaiting_review and 4 held are a refresh's outcomes, for cron
        raise CliFailed(f"entrasync {' '.join(args)} exited {result.exit_code}: {result.stderr or result.output}")
    return orjson.loads(result.stdout)


def connect(env: dict[str, str], emulator: Any) -> Any:
    return cli(env, "connect", "--tenant-id", emulator.info.tenant_id)


def people(env: dict[str, str], status: str = "all") -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    page = 1
    while True:
        data = cli(env, "people", "list", "--status", status, "--page", str(page), "--per-page", "500")
        out.extend(data["items"])
        if len(out) >= data["total"] or not data["items"]:
            return out
        page += 1


def audit_rows(env: dict[str, str], *args: str) -> list[dict[str, Any]]:
    """Every audit entry (newest first), paging with --before-id as a script would."""
    out: list[dict[str, Any]] = []
    before: list[str] = []
    while True:
        page = cli(env, "audit", "list", "--limit", "1000", *args, *before)
        out.extend(page["items"])
        if page["next_before_id"] is None:
            return out
        before = ["--before-id", str(page["next_before_id"])]


def by_entra(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["entra_id"]: r for r in rows if r["entra_id"]}


def expected_email(user: dict[str, Any]) -> str:
    return str(user.get("mail") or user["userPrincipalName"])


def assert_directory_matches(env: dict[str, str], tenant_users: list[dict[str, Any]], in_scope: set[str]) -> None:
    """Every in-scope Entra user is an active person with Entra's data and manager; nobody else is active
    among synced people."""
    rows = people(env)
    linked = by_entra(rows)
    id_to_entra = {r["id"]: r["entra_id"] for r in rows}
    users = {u["id"]: u for u in tenant_users}
    for uid in in_scope:
        u = users[uid]
        p = linked.get(uid)
        assert p is not None, f"in-scope user {u['userPrincipalName']} missing from the directory"
        assert p["status"] in ("active", "paused"), (u["userPrincipalName"], p["status"])
        assert p["email"] == expected_email(u)
        assert p["display_name"] == u.get("displayName")
        assert p["job_title"] == u.get("jobTitle")
        assert p["departments"] == ([u["department"]] if u.get("department") else [])
        mgr = u.get("managerId")
        want_mgr = mgr if mgr in in_scope else None
        assert id_to_entra.get(p["manager_id"]) == want_mgr, (u["userPrincipalName"], p["manager_id"], want_mgr)
    for p in rows:
        if p["source"] == "entra" and p["status"] != "archived":
            assert p["entra_id"] in in_scope, f"{p['email']} is active but not in scope"


def enabled_ids(tenant_users: list[dict[str, Any]]) -> set[str]:
    return {u["id"] for u in tenant_users if u.get("accountEnabled")}


def transitive_user_ids(admin: Any, group_id: str) -> set[str]:
    """Users reachable from a group through nested groups, computed from the emulator's admin API
    (independently of the product's Graph reader)."""
    group_ids = {g["id"] for g in admin.tenant_summary()["groups"]}
    user_ids = {u["id"] for u in admin.list_users()}
    seen: set[str] = set()
    found: set[str] = set()
    stack = [group_id]
    while stack:
        gid = stack.pop()
        if gid in seen:
            continue
        seen.add(gid)
        for member in admin.get_group(gid)["members"]:
            if member in group_ids:
                stack.append(member)
            elif member in user_ids:
                found.add(member)
    return found


def nested_group(admin: Any) -> tuple[str, set[str]]:
    """A group with a group among its direct members whose transitive users are a strict subset."""
    summary = admin.tenant_summary()
    group_ids = {g["id"] for g in summary["groups"]}
    everyone = {u["id"] for u in admin.list_users()}
    for g in summary["groups"]:
        direct = set(admin.get_group(g["id"])["members"])
        if direct & group_ids:
            users = transitive_user_ids(admin, g["id"])
            if users and users != everyone:
                return g["id"], users
    raise AssertionError("the sample tenant has no nested group")
