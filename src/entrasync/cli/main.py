"""The ``entrasync`` command line (§7): every command has ``--json`` and a one-line error on failure.

The rules every command keeps, enforced here once:

- exactly one line on stderr when it fails (``error: …``), usage errors included, never a traceback;
- warnings and retries go to the log (``ENTRASYNC_LOG_FILE``, default ``<data dir>/entrasync.log``),
  shown on stderr with ``--verbose`` (or ``ENTRASYNC_VERBOSE=1``), never between output and an error;
- output cut short by a closed pipe (``| head``) is not an error;
- arguments that are not valid UTF-8 are refused in words.

Exit codes (documented in the README, for cron): 0 success (a refresh ``applied`` or ``no_changes``);
1 failure (a refresh ``failed``, or any error); 2 usage error; 3 a plan ``awaiting_review``; 4 ``held``.
"""

from __future__ import annotations

import os
import sys

try:  # Typer 0.2x vendors its own click; its commands raise that click's exceptions
    from typer._click import exceptions as clickx
except ImportError:  # pragma: no cover - an older Typer runs on click itself
    from click import exceptions as clickx  # type: ignore[no-redef]
import typer

from entrasync.cli import directory_cmds, org_cmds, setup_cmds, sync_cmds, token_cmds, webhook_cmds
from entrasync.cli.app import add_org_option, app
from entrasync.cli.logs import configure_logging
from entrasync.cli.output import closed_pipe

add_org_option()

__all__ = ["app", "directory_cmds", "main", "org_cmds", "setup_cmds", "sync_cmds", "token_cmds", "webhook_cmds"]

EXIT_USAGE = 2


def _say(message: str, code: int) -> int:
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    return code


def _bad_argument(argv: list[str]) -> str | None:
    """The first argument that is not valid UTF-8 (Python keeps such bytes as lone surrogates)."""
    for i, arg in enumerate(argv, start=1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            return f"argument {i} is not valid UTF-8 text; pass it in UTF-8 (check the terminal's locale)."
    return None


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (what ``main`` exits with; tests call this)."""
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in args or "-v" in args or os.environ.get("ENTRASYNC_VERBOSE", "") not in ("", "0")
    args = [a for a in args if a not in ("--verbose", "-v")]
    problem = _bad_argument(args)
    if problem:
        return _say(problem, EXIT_USAGE)
    configure_logging(verbose=verbose)
    try:
        code = app(args=args, prog_name="entrasync", standalone_mode=False)
    except clickx.NoArgsIsHelpError as exc:
        # `entrasync` or `entrasync plan` alone: the help, on stdout, as for --help.
        if exc.ctx is not None:
            sys.stdout.write(exc.ctx.get_help() + "\n")
        return 0
    except clickx.UsageError as exc:
        where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else " (see `entrasync --help`)"
        return _say(exc.format_message().strip().rstrip(".") + where + ".", EXIT_USAGE)
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        return _say("interrupted", 130)
    except BrokenPipeError:
        return closed_pipe()
    except clickx.ClickException as exc:
        return _say(exc.format_message().strip(), exc.exit_code)
    return int(code) if isinstance(code, int) else 0


def main() -> None:
    try:
        code = run()
        sys.stdout.flush()
    except BrokenPipeError:
        code = closed_pipe()
    raise SystemExit(code)


if __name__ == "__main__":
    main()
