"""The command line. Set up here, before any command module is imported:

httpx's package imports its own command line (``httpx._main``: rich, click and pygments, ~40 ms of a
~0.7 s ``entrasync refresh``) whenever those happen to be installed. A process of this CLI never runs
httpx's, so that import is declined: a ``None`` entry in ``sys.modules`` makes it raise ImportError,
which httpx catches (its ``httpx`` command, another process, is unaffected).
"""

import sys

sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
