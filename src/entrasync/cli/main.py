"""The ``entrasync`` command line (§7): every command has ``--json`` and a one-line error on failure."""

from __future__ import annotations

from entrasync.cli import directory_cmds, org_cmds, setup_cmds, sync_cmds
from entrasync.cli.app import add_org_option, app

add_org_option()

__all__ = ["app", "directory_cmds", "main", "org_cmds", "setup_cmds", "sync_cmds"]


def main() -> None:
    app()


if __name__ == "__main__":
    main()
