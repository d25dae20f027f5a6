"""acechart: a fast chart-data proxy and cache in front of the ACE IoT timeseries API."""

from acechart._core import __version__

__all__ = ["__version__"]
