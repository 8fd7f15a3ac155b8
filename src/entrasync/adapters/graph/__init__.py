"""The Microsoft Graph adapter: the only code that talks HTTP to Graph and the identity platform."""

from entrasync.adapters.graph.client import GraphClient, GraphConfig
from entrasync.adapters.graph.errors import (
    DeltaTokenExpiredError,
    GraphBadRequestError,
    GraphError,
    GraphStopError,
    GraphTransientError,
)
from entrasync.adapters.graph.reader import (
    DeltaCursor,
    FetchResult,
    check_groups,
    count_users,
    fetch_snapshot,
)

__all__ = [
    "DeltaCursor",
    "DeltaTokenExpiredError",
    "FetchResult",
    "GraphBadRequestError",
    "GraphClient",
    "GraphConfig",
    "GraphError",
    "GraphStopError",
    "GraphTransientError",
    "check_groups",
    "count_users",
    "fetch_snapshot",
]
