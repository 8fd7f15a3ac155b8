"""Issue 12.5 and 12.6: the CLI's rules (spec §7) checked on the real console script, as cron and shell
scripts use it: one stderr line on failure, logs out of the way, exit codes, closed pipes, fail fast.

Each case is something that happened before: warnings printed before the `error:` line and during
successful runs; Typer's boxed usage help; `| head` exiting 2 with BrokenPipeError; a 45-line traceback
for a port in use; `ENTRASYNC_GRAPH_URL='not a url'` spending ~90 s in ten retries and blaming Microsoft.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

EXE = str(Path(sys.executable).with_name("entrasync"))


def run(
    env: dict[str, str], *args: str, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ENTRASYNC_")}
    return subprocess.run([EXE, *args], env={**base, **env}, capture_output=True, text=True, timeout=timeout,
                          input=stdin)  # fmt: skip


def one_line(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode != 0, p
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    assert "Traceback" not in p.stderr
    return lines[0]


@pytest.fixture
def connected(env: dict[str, str], emulator: Any) -> dict[str, str]:
    out = run(env, "connect", "--tenant-id", emulator.info.tenant_id, "--json")
    assert out.returncode == 0, out.stderr
    return env


def test_retries_are_logged_not_printed_and_verbose_shows_them(connected: dict[str, str], admin: Any) -> None:
    Path(connected["ENTRASYNC_DATA_DIR"]).mkdir(parents=True, exist_ok=True)  # the log lives in the data folder
    admin.inject_fault("/v1.0/users*", "429", count=2, retry_after="0")
    quiet = run(connected, "refresh", "--json")
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr  # a successful run prints no warning
    assert orjson.loads(quiet.stdout)["outcome"] == "applied"
    admin.inject_fault("/v1.0/users/delta*", "429", count=1, retry_after="0")
    loud = run(connected, "--verbose", "refresh", "--json")
    assert loud.returncode == 0 and "429" in loud.stderr and "retry" in loud.stderr
    log = Path(connected["ENTRASYNC_DATA_DIR"]) / "entrasync.log"
    assert "429" in log.read_text()  # the log keeps them


def test_usage_errors_are_one_line(env: dict[str, str]) -> None:
    assert "No such command" in one_line(run(env, "nosuch"))
    assert "--bogus" in one_line(run(env, "people", "list", "--bogus"))
    assert one_line(run(env, "people", "list", "--per-page", "0")).endswith("1 to 500.")


def test_a_closed_pipe_is_not_an_error(env: dict[str, str]) -> None:
    p = subprocess.run(f"'{EXE}' --help | head -n 1", shell=True, capture_output=True, text=True, timeout=60,
                       env={**os.environ, **env})  # fmt: skip
    assert p.returncode == 0 and p.stderr == "", p.stderr
    big = subprocess.run(["bash", "-c", f"set -o pipefail; '{EXE}' audit list --limit 1000 --json | head -c 10"],
                         capture_output=True, text=True, timeout=60, env={**os.environ, **env})  # fmt: skip
    assert big.returncode == 0 and big.stderr == "", big.stderr


def test_ports_and_sizes_are_checked_before_starting(env: dict[str, str], tmp_path: Path) -> None:
    assert "65535" in one_line(run(env, "emulator", "--port", "99999"))
    assert "--users" in one_line(run(env, "demo", "--users", "-5", "--no-serve"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        started = time.monotonic()
        assert "in use" in one_line(run(env, "emulator", "--port", port, "--data-dir", str(tmp_path / "e")))
        # The demo refuses before its first refresh, not after it.
        assert "in use" in one_line(run({**env, "ENTRASYNC_DATA_DIR": str(tmp_path / "d")}, "demo", "--port", port))
        assert time.monotonic() - started < 30
        assert "in use" in one_line(run(env, "serve", "--port", port))


def test_arguments_and_databases_that_cannot_work_are_one_line(env: dict[str, str], tmp_path: Path) -> None:
    bad_utf8 = subprocess.run([EXE.encode(), b"people", b"list", b"--search", b"\xff\xfe"], capture_output=True,
                              timeout=60, env={**os.environ, **env})  # fmt: skip
    assert bad_utf8.returncode == 2 and b"not valid UTF-8" in bad_utf8.stderr and bad_utf8.stderr.count(b"\n") == 1
    no_folder = {**env, "ENTRASYNC_DATABASE_URL": f"sqlite:///{tmp_path}/missing/dir/x.sqlite3"}
    assert "folder does not exist" in one_line(run(no_folder, "people", "list"))
    scheme = {**env, "ENTRASYNC_DATABASE_URL": "mysql://u@localhost/db"}
    assert "sqlite:///" in one_line(run(scheme, "people", "list"))
    missing = {**env, "ENTRASYNC_DATABASE_URL": "postgresql://root@127.0.0.1:5432/entrasync_no_such_db"}
    assert "does not exist" in one_line(run(missing, "people", "list"))


@pytest.mark.parametrize(
    ("graph_url", "words"),
    [
        ("not a url", "https:// URL"),
        ("http://127.0.0.1:9/", "https:// URL"),
        ("https://127.0.0.1:9/", "nothing answered"),
    ],
)
def test_urls_that_cannot_work_fail_fast_and_say_so(connected: dict[str, str], graph_url: str, words: str) -> None:
    started = time.monotonic()
    p = run({**connected, "ENTRASYNC_GRAPH_URL": graph_url}, "refresh")
    assert time.monotonic() - started < 20  # not ten retries over ~90 s
    line = one_line(p)
    assert words in line and "refused the connection" not in line, line
    status = run(connected, "runs", "list", "--json")
    assert orjson.loads(status.stdout)[0]["outcome"] == "failed"  # a failed run, with the reason


def test_a_tls_certificate_that_is_not_trusted_fails_at_once(connected: dict[str, str]) -> None:
    env = {**connected, "ENTRASYNC_CA_BUNDLE": ""}  # the emulator's certificate, checked against certifi
    started = time.monotonic()
    line = one_line(run(env, "refresh"))
    assert time.monotonic() - started < 20 and "not trusted" in line and "ENTRASYNC_CA_BUNDLE" in line, line


def test_refresh_outcomes_have_exit_codes_for_cron(connected: dict[str, str], admin: Any) -> None:
    assert run(connected, "refresh").returncode == 0  # applied
    assert run(connected, "refresh").returncode == 0  # no_changes
    run(connected, "settings", "set", "--mode", "manual")
    user = next(u for u in admin.list_users() if u["accountEnabled"])
    admin.update_user(user["id"], jobTitle="Waits For Review")
    assert run(connected, "refresh").returncode == 3  # awaiting_review
    run(connected, "settings", "set", "--mode", "auto")
    for u in [u for u in admin.list_users() if u["accountEnabled"]][:30]:
        admin.disable_user(u["id"])
    held = run(connected, "refresh", "--json")
    assert held.returncode == 4 and orjson.loads(held.stdout)["outcome"] == "held"


def test_admin_create_on_an_existing_account_says_so_and_sets_exactly_the_roles(env: dict[str, str]) -> None:
    env = {**env, "ENTRASYNC_ADMIN_PASSWORD": "first-password-long"}
    made = run(env, "admin", "create", "--email", "a@contoso.test", "--role", "super_admin", "--role", "it_admin",
               "--json")  # fmt: skip
    assert made.returncode == 0, made.stderr
    again = run({**env, "ENTRASYNC_ADMIN_PASSWORD": "second-password-long"}, "admin", "create", "--email",
                "a@contoso.test")  # fmt: skip
    assert "--reset-password" in one_line(again)
    reset = run({**env, "ENTRASYNC_ADMIN_PASSWORD": "second-password-long"}, "admin", "create", "--email",
                "a@contoso.test", "--role", "super_admin", "--reset-password", "--json")  # fmt: skip
    assert reset.returncode == 0 and orjson.loads(reset.stdout)["roles"] == ["super_admin"]


def test_people_list_says_when_there_are_more_pages(connected: dict[str, str]) -> None:
    run(connected, "refresh")
    text = run(connected, "people", "list", "--per-page", "5")
    assert text.returncode == 0 and "next page: --page 2" in text.stdout
    data = orjson.loads(run(connected, "people", "list", "--per-page", "5", "--json").stdout)
    assert data["more"] is True and len(data["items"]) == 5


def test_the_ready_lines_are_json_and_alone_on_stdout(env: dict[str, str], tmp_path: Path) -> None:
    p = subprocess.Popen([EXE, "emulator", "--port", "0", "--users", "20", "--data-dir", str(tmp_path / "e"),
                          "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert p.stdout is not None
        ready = orjson.loads(p.stdout.readline())
        assert ready["graph_url"].startswith("https://")
    finally:
        p.terminate()
        p.wait(20)
    demo = run({**env, "ENTRASYNC_DATA_DIR": str(tmp_path / "demo")}, "demo", "--users", "20", "--no-serve", "--json")
    assert demo.returncode == 0, demo.stderr
    lines = demo.stdout.splitlines()
    assert len(lines) == 1 and orjson.loads(lines[0])["refresh"]["outcome"] == "applied"


def test_serve_on_port_0_names_the_port_it_got(env: dict[str, str]) -> None:
    import httpx

    p = subprocess.Popen([EXE, "serve", "--port", "0", "--json"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, env={**os.environ, **env})  # fmt: skip
    try:
        assert p.stdout is not None
        ready = orjson.loads(p.stdout.readline())
        assert ready["ready"] is True and not ready["url"].endswith(":0")
        assert httpx.get(ready["url"] + "/healthz", timeout=10).status_code in (200, 503)
    finally:
        p.terminate()
        p.wait(20)


def test_a_pipe_closed_before_a_command_prints_is_not_an_error(env: dict[str, str]) -> None:
    """`people list | head -n 1`: the table is written line by line inside the command. Here the reader
    is gone before the first line (deterministic, unlike `head`'s timing): exit 0, nothing on stderr,
    where it used to be `error: unexpected BrokenPipeError` (exit 2) or Typer's own exit 1."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("ENTRASYNC_")}
    for args in (["people", "list"], ["people", "list", "--json"], ["runs", "list"]):
        p = subprocess.Popen([EXE, *args], env={**base, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert p.stdout is not None and p.stderr is not None
        p.stdout.close()
        err = p.stderr.read().decode()
        assert p.wait(timeout=60) == 0 and err == "", (args, p.returncode, err)


def test_a_data_folder_that_cannot_be_made_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    """It was a 30-line FileNotFoundError traceback (emulator) and 'unexpected NotADirectoryError' (demo)."""
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    line = one_line(run(env, "emulator", "--port", "0", "--data-dir", str(a_file / "emulator")))
    assert "--data-dir" in line and "Not a directory" in line
    line = one_line(run({**env, "ENTRASYNC_DATA_DIR": str(a_file)}, "demo", "--no-serve"))
    assert "ENTRASYNC_DATA_DIR" in line and str(a_file / "demo") in line
    assert a_file.read_text() == "not a folder"


def test_a_second_refresh_process_reuses_the_token_until_the_connection_changes(
    connected: dict[str, str], admin: Any, emulator: Any
) -> None:
    """Each `entrasync refresh` asked the identity platform for a token (and loaded msal to do it);
    the token is now kept sealed with the connection (services.graph_tokens)."""
    token_posts = f"POST /{emulator.info.tenant_id}/oauth2/v2.0/token"
    assert run(connected, "refresh").returncode == 0
    admin.reset_counters()
    assert run(connected, "refresh").returncode == 0
    assert admin.counters().get(token_posts, 0) == 0
    assert run(connected, "disconnect").returncode == 0
    assert run(connected, "connect", "--tenant-id", emulator.info.tenant_id).returncode == 0
    admin.reset_counters()
    assert run(connected, "refresh").returncode == 0
    assert admin.counters().get(token_posts, 0) == 1  # a new connection starts without one
