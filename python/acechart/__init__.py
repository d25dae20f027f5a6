"""acechart: a fast chart-data proxy and cache in front of the ACE IoT timeseries API."""

from acechart._core import __version__
from acechart.client import AsyncClient, Client, connect
from acechart.query import Query
from acechart.result import Provenance, Result, Series
from acechart.runtime import Runtime
from acechart.settings import Settings

__all__ = [
    "AsyncClient",
    "Client",
    "Provenance",
    "Query",
    "Result",
    "Runtime",
    "Series",
    "Settings",
    "__version__",
    "connect",
]
