"""All input validation, one module per capability."""

from .reroute import CHOOSE, GONE, QueueStatsQuery, RerouteForm

__all__ = ["CHOOSE", "GONE", "QueueStatsQuery", "RerouteForm"]
