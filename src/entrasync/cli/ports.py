"""Checking a listening port before anything starts: a port in use, or out of range, is one line."""

from __future__ import annotations

import errno
import socket

from entrasync.cli.output import fail


def check_port(port: int, option: str = "--port", *, allow_zero: bool = True) -> None:
    low = 0 if allow_zero else 1
    if not low <= port <= 65535:
        fail(f"{option} must be a port number from {low} to 65535{' (0 picks a free one)' if allow_zero else ''}.")


def ensure_free(host: str, port: int, what: str) -> None:
    """Refuse, in one line, a port another program listens on (before the demo's first refresh)."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                fail(f"port {port} on {host} is in use by another program; stop it or choose another with --port.")
            if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                fail(f"cannot listen on {host}: it is not an address of this machine; check --host.")
            fail(f"cannot listen on {host}:{port} for {what}: {exc.strerror or exc}.")
