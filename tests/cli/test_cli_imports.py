"""What a CLI process imports to refresh: start-up is most of a cron ``entrasync refresh`` (§9: the
whole unchanged-refresh process within 0.7 s), so the libraries it never uses stay out of it."""

from __future__ import annotations

import json
import subprocess
import sys

# Modules a refresh must not load: httpx's own command line (rich, click, pygments), certificate
# parsing (only a certificate credential needs it), migrations at head, the web app and the queue, and
# msal with requests until a token is asked for (a stored one needs neither: services.graph_tokens), and
# HTTP/2 (h2, when installed: entrasync speaks HTTP/1.1 only).
NOT_LOADED = ["httpx._main", "rich", "pygments", "cryptography.x509", "alembic", "fastapi", "jinja2", "procrastinate",
              "msal", "requests", "h2", "hpack", "hyperframe"]  # fmt: skip

PROBE = f"""
import json, sys
import entrasync.cli.main
import entrasync.services.sync
import entrasync.adapters.graph.auth
import httpx
httpx.Client().close()  # httpx imports its transport (httpcore) with the first client
print(json.dumps([m for m in {NOT_LOADED!r} if sys.modules.get(m) is not None]))
"""


def test_a_refresh_process_loads_none_of_the_unused_libraries() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(out.stdout) == []
