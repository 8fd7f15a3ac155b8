"""Where webhooks may be sent (spec §11: no SSRF): an http(s) URL whose host resolves only to public
addresses. Every address the name resolves to is checked, not just the first, since the connection may
use any of them; the check runs when the endpoint is saved and again before each round of deliveries
(a name may be re-pointed at an internal address later). ``ENTRASYNC_WEBHOOK_ALLOW_PRIVATE`` lets a
deployment (and the tests, whose receiver listens on 127.0.0.1) deliver to private networks.

Refused: loopback, link-local (169.254/16 with cloud metadata, fe80::/10), private (RFC 1918,
fc00::/7), shared (100.64/10), unspecified, reserved, documentation and multicast addresses: all that
``ipaddress`` does not call global, plus multicast. IPv4-mapped IPv6 addresses are judged as IPv4.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from entrasync.errors import ValidationError

Resolver = Callable[[str, int], list[str]]
MAX_URL = 2048


class TargetRefusedError(Exception):
    """The URL's host resolves to an address webhooks may not be sent to (or does not resolve)."""


def resolve_all(host: str, port: int) -> list[str]:
    infos: list[Any] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def _forbidden(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_multicast or not ip.is_global


def parse(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a webhook URL, or a ValidationError saying what is wrong with it."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL or any(ord(c) < 33 for c in url):
        raise ValidationError({"url": f"Give an http:// or https:// URL of at most {MAX_URL} characters, no spaces."})
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
        raise ValidationError(
            {"url": "Give an http:// or https:// URL with a host name, e.g. https://example.com/hook."}
        )
    if parts.username is not None or parts.password is not None:
        raise ValidationError({"url": "Leave credentials out of the URL: receivers verify the signature instead."})
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def check(url: str, *, allow_private: bool, resolve: Resolver = resolve_all) -> None:
    """Raise TargetRefusedError unless every address of the URL's host may receive webhooks."""
    _scheme, host, port = parse(url)
    if allow_private:
        return
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError) as exc:
        raise TargetRefusedError(f"The host {host} does not resolve ({exc}).") from None
    if not addresses:
        raise TargetRefusedError(f"The host {host} does not resolve.")
    bad = [a for a in addresses if _forbidden(a)]
    if bad:
        raise TargetRefusedError(
            f"The host {host} resolves to {', '.join(bad)}: a loopback, link-local or private address, which "
            "webhooks are not sent to. Use a public address (or set ENTRASYNC_WEBHOOK_ALLOW_PRIVATE on this "
            "deployment)."
        )


def check_for_save(url: str, *, allow_private: bool, resolve: Resolver = resolve_all) -> None:
    """:func:`check` with its refusal said against the form's ``url`` field."""
    try:
        check(url, allow_private=allow_private, resolve=resolve)
    except TargetRefusedError as exc:
        raise ValidationError({"url": str(exc)}) from None
