"""The OpenAPI 3.1 document of the service: data routes (`document`) and job routes (`jobs`)."""

from acechart.server.openapi.document import build_document

__all__ = ["build_document"]
