"""All input validation, one module per capability."""

from .history import HistoryFilterForm
from .reroute import CHOOSE, GONE, PreviewQuery, RerouteForm

__all__ = ["CHOOSE", "GONE", "HistoryFilterForm", "PreviewQuery", "RerouteForm"]
