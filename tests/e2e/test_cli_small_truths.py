"""Issue 12.7 through the CLI: the small truths (SQLite and PostgreSQL).

Before: a Graph filter matching nobody saved silently (the next refresh then found nobody in scope); the
"N users match" of a Save ignored the group filter; `settings show` named the Recipient by id while
`settings set` takes an e-mail.
"""

from __future__ import annotations

import re
from typing import Any

from e2e_helpers import audit_rows, cli, connect, nested_group, people

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?\+00:00$")


def test_a_filter_matching_nobody_warns_at_save(env: dict[str, str], emulator: Any) -> None:
    connect(env, emulator)
    out = cli(env, "settings", "set", "--graph-filter", "department eq 'No Such Department'")
    assert out["matching_users"] == 0
    assert "No user matches" in out["warning"]
    assert out["graph_filter"] == "department eq 'No Such Department'"  # saved all the same: the admin decides
    fine = cli(env, "settings", "set", "--graph-filter", "accountEnabled eq true")
    assert fine["matching_users"] > 0 and "warning" not in fine


def test_the_match_count_accounts_for_the_group_filter(env: dict[str, str], emulator: Any, admin: Any) -> None:
    connect(env, emulator)
    group_id, members = nested_group(admin)
    only_groups = cli(env, "settings", "set", "--groups", group_id)
    assert only_groups["matching_users"] == len(members)
    enabled = {u["id"] for u in admin.list_users() if u["accountEnabled"]}
    both = cli(env, "settings", "set", "--graph-filter", "accountEnabled eq true", "--groups", group_id)
    assert both["matching_users"] == len(members & enabled)
    assert len(members & enabled) < len(enabled)  # the count is not simply the Graph filter's


def test_recipient_reads_the_same_in_show_and_set(env: dict[str, str], emulator: Any) -> None:
    connect(env, emulator)
    cli(env, "refresh")
    with_password = {**env, "ENTRASYNC_ADMIN_PASSWORD": "a long enough password"}
    cli(with_password, "admin", "create", "--email", "owner@contoso.test")
    saved = cli(env, "settings", "set", "--notify", "--recipient", "owner@contoso.test")
    shown = cli(env, "settings", "show")
    assert saved["recipient"] == shown["recipient"] == "owner@contoso.test"
    assert saved["recipient_id"] == shown["recipient_id"]


def test_timestamps_have_one_format(env: dict[str, str], emulator: Any) -> None:
    connect(env, emulator)
    cli(env, "refresh")
    stamps: list[str] = []
    for run in cli(env, "runs", "list"):
        stamps += [run["started_at"], run["finished_at"]]
    for person in people(env):
        stamps += [person[k] for k in ("created_at", "updated_at", "last_synced_at") if person[k]]
    stamps += [row["at"] for row in audit_rows(env)]
    stamps = [s for s in stamps if s]
    assert stamps and all(ISO_UTC.match(s) for s in stamps), [s for s in stamps if not ISO_UTC.match(s)][:5]
