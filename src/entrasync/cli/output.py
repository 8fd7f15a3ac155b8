"""CLI output: JSON for scripts, short text for people, one-line errors and exit codes."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NoReturn, ParamSpec, TypeVar

import orjson
import typer

P = ParamSpec("P")
EXIT_FAILED = 1
EXIT_AWAITING_REVIEW = 3
EXIT_HELD = 4
R = TypeVar("R")


def _default(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    if isinstance(obj, bytes):
        return "<binary>"
    raise TypeError


def emit_json(data: Any) -> None:
    sys.stdout.write(
        orjson.dumps(data, default=_default, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n"
    )


def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr, non-zero exit: never a traceback."""
    sys.stderr.write(f"error: {message}\n")
    raise typer.Exit(code)


def closed_pipe() -> int:
    """``entrasync … | head``: the reader left; stop quietly (exit 0), and keep Python from complaining
    about the unflushed output at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass
    return 0


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn the product's errors (and anything unexpected) into a one-line message and exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from entrasync.errors import EntrasyncError

        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except EntrasyncError as exc:  # the services say what went wrong, Graph's answers included
            fail(str(exc).replace("\n", " "))
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except BrokenPipeError:
            # The reader left (`entrasync people list | head`): not an error. Left to propagate, Typer's
            # click would exit 1 on it (its EPIPE rule), and the clause below would call it unexpected.
            raise typer.Exit(closed_pipe()) from None
        except Exception as exc:
            if os.environ.get("ENTRASYNC_DEBUG"):
                raise
            logging.getLogger("entrasync").debug("unexpected error", exc_info=True)
            fail(
                f"unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
                "(set ENTRASYNC_DEBUG=1 for details)",
                2,
            )
        raise AssertionError("unreachable")

    return wrapper


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    if not rows:
        typer.echo("(none)")
        return
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    typer.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(v, list | tuple):
        return ",".join(map(str, v))
    if isinstance(v, dict):
        return " ".join(f"{k}={x}" for k, x in v.items() if x)
    s = str(v)
    return s if len(s) <= 60 else s[:57] + "..."
