"""The ``entrasync`` command line (§7): every command has ``--json`` and a one-line error on failure."""

from __future__ import annotations

from entrasync.cli import directory_cmds, setup_cmds, sync_cmds, token_cmds, webhook_cmds
from entrasync.cli.app import app

__all__ = ["app", "directory_cmds", "main", "setup_cmds", "sync_cmds", "token_cmds", "webhook_cmds"]


def main() -> None:
    app()


if __name__ == "__main__":
    main()
