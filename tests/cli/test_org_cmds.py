"""``entrasync org create|list|show`` and ``--org`` / ``ENTRASYNC_ORG`` on every command (spec §10)."""

from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

from entrasync.cli.app import app
from entrasync.cli.main import app as main_app

runner = CliRunner()


def _env(db_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"ENTRASYNC_DATA_DIR": str(tmp_path / "data"), "ENTRASYNC_DATABASE_URL": db_url,
            "ENTRASYNC_SECRET_KEY": "cli-org-tests", "ENTRASYNC_ADMIN_PASSWORD": "a long enough password", **extra}


def _run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = runner.invoke(main_app, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_org_commands_and_the_org_option(db_url: str, tmp_path: Path) -> None:
    env = _env(db_url, tmp_path)
    code, out, _err = _run(env, "org", "create", "--slug", "acme", "--name", "Acme Ltd", "--time-zone",
                           "Europe/Paris", "--json")  # fmt: skip
    assert code == 0 and orjson.loads(out)["sign_in_path"] == "/o/acme/signin"
    code, _out, err = _run(env, "org", "create", "--slug", "acme", "--name", "Twice")
    assert code == 1 and err == "error: An organisation 'acme' exists already.\n"
    # Each organisation has its own people: --org, ENTRASYNC_ORG, and the default with neither.
    assert _run(env, "admin", "create", "--email", "a@acme.example", "--org", "acme", "--json")[0] == 0
    assert _run(env, "admin", "create", "--email", "d@default.example", "--json")[0] == 0
    acme = orjson.loads(_run(env, "people", "list", "--org", "acme", "--json")[1])
    assert [p["email"] for p in acme["items"]] == ["a@acme.example"]
    also = orjson.loads(_run({**env, "ENTRASYNC_ORG": "acme"}, "people", "list", "--json")[1])
    assert also["items"] == acme["items"]
    default = orjson.loads(_run(env, "people", "list", "--json")[1])
    assert [p["email"] for p in default["items"]] == ["d@default.example"]
    # An unknown organisation is refused in one line, and is not created.
    for args in (("people", "list", "--org", "nope"), ("refresh", "--org", "nope", "--json"),
                 ("settings", "show", "--org", "nope")):  # fmt: skip
        code, out, err = _run(env, *args)
        assert code == 1 and out == "" and err.count("\n") == 1, (args, err)
        assert err.startswith("error: There is no organisation 'nope'.")
    listed = orjson.loads(_run(env, "org", "list", "--json")[1])
    assert [(o["slug"], o["people"]) for o in listed] == [("acme", 1), ("default", 1)]
    shown = orjson.loads(_run(env, "org", "show", "acme", "--json")[1])
    assert shown["time_zone"] == "Europe/Paris" and shown["name"] == "Acme Ltd"
    code, _out, err = _run(env, "org", "show", "nope")
    assert code == 1 and err == "error: There is no organisation 'nope'.\n"


def test_every_organisation_command_takes_org_and_deployment_commands_do_not() -> None:
    from entrasync.cli import app as cli_app

    with_org, without = [], []
    for info in cli_app._org_commands():
        with_org.append(info.name or info.callback.__name__)
    assert {"refresh", "connect", "disconnect", "list", "show", "set", "apply", "create"} <= set(with_org)
    for name in ("serve", "worker", "emulator", "demo", "migrate"):
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0 and "--org" not in result.stdout, name
        without.append(name)
    for args in (["refresh"], ["people", "list"], ["plan", "apply"], ["runs", "show"], ["connect"]):
        result = runner.invoke(app, [*args, "--help"])
        assert result.exit_code == 0 and "--org" in result.stdout, args
    assert len(without) == 5
