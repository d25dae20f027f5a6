"""acechart: a fast chart-data proxy and cache in front of the ACE IoT timeseries API."""

from acechart._core import __version__
from acechart.query import Query
from acechart.result import Provenance, Result, Series
from acechart.runtime import Connection, Runtime, connect
from acechart.settings import Settings

__all__ = [
    "Connection",
    "Provenance",
    "Query",
    "Result",
    "Runtime",
    "Series",
    "Settings",
    "__version__",
    "connect",
]
