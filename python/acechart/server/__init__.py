"""The HTTP service: the seed's API on aiohttp over the engine (`acechart serve`)."""

from acechart.server.app import create_app

__all__ = ["create_app"]
