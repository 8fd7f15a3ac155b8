"""The command line. Set up here, before any command module is imported:

httpx's package imports its own command line (``httpx._main``: rich, click and pygments, ~40 ms of a
~0.7 s ``entrasync refresh``) whenever those happen to be installed. A process of this CLI never runs
httpx's, so that import is declined: a ``None`` entry in ``sys.modules`` makes it raise ImportError,
which httpx catches (its ``httpx`` command, another process, is unaffected).

httpcore likewise imports its HTTP/2 connection (the ``h2``, ``hpack`` and ``hyperframe`` packages, 23
modules) whenever ``h2`` is installed (another package's ``httpx[http2]``, say): entrasync speaks
HTTP/1.1 only (``adapters.graph.client`` sets ``http2=False``; no other client of ours asks for it), so
that import is declined the same way, which httpcore catches.
"""

import sys

sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
sys.modules.setdefault("h2", None)  # type: ignore[arg-type]
