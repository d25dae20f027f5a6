"""pytest fixtures for the storage backends, including a real S3 server (moto).

`moto_s3` starts moto's S3-protocol server on a free local port once per test
session (in a thread of this process) and creates one bucket; `s3_store` gives
each test an `S3ObjectStore` on that bucket under its own random prefix, so
tests never see each other's objects and the server starts once. The store is
per test, not per session, because an aiobotocore client belongs to the event
loop it was created on and pytest-asyncio gives each test its own loop.

Use them by importing into a test module (`from tests.storage_fixtures import
moto_s3, s3_store  # noqa: F401`) or with `pytest_plugins` in a top conftest.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from aiobotocore.session import AioSession, get_session
from moto.server import ThreadedMotoServer

from acechart.storage import LocalObjectStore, ObjectStore
from acechart.storage.s3 import MIN_PART_SIZE, S3ObjectStore

__all__ = ["MotoS3", "local_store", "moto_s3", "object_store", "s3_store"]

REGION = "us-east-1"
ACCESS_KEY = "testing"
SECRET_KEY = "testing"


@dataclass(frozen=True)
class MotoS3:
    """Where the test S3 server listens and the bucket it holds."""

    endpoint_url: str
    bucket: str
    session: AioSession

    def store(self, prefix: str | None = None, **kwargs: object) -> S3ObjectStore:
        """A new (unopened) store on the test bucket; a random prefix unless one is given."""
        return S3ObjectStore(
            self.endpoint_url,
            self.bucket,
            REGION,
            ACCESS_KEY,
            SECRET_KEY,
            prefix=f"t-{uuid.uuid4().hex[:12]}/" if prefix is None else prefix,
            session=self.session,
            **kwargs,  # type: ignore[arg-type]
        )

    def boto3_client(self) -> Any:
        """A plain synchronous client, for inspecting the server behind the store's back."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    """moto's S3 server on a free port of 127.0.0.1, with one bucket; stopped at the end."""
    # werkzeug logs every request (and every expected 404) at INFO: keep the output readable.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        moto = MotoS3(f"http://{host}:{port}", "acechart-test", get_session())
        moto.boto3_client().create_bucket(Bucket=moto.bucket)
        yield moto
    finally:
        server.stop()


@pytest.fixture
async def s3_store(moto_s3: MotoS3) -> AsyncIterator[S3ObjectStore]:
    """An open `S3ObjectStore` under a fresh prefix; multipart parts at the 5 MiB minimum."""
    async with moto_s3.store(part_size=MIN_PART_SIZE) as store:
        yield store


@pytest.fixture
async def local_store(tmp_path: Path) -> AsyncIterator[LocalObjectStore]:
    """An open `LocalObjectStore` in a fresh temporary directory."""
    async with LocalObjectStore(tmp_path / "objects") as store:
        yield store


@pytest.fixture(params=["local", "s3"])
async def object_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[ObjectStore]:
    """Each `ObjectStore` implementation in turn: the conformance suite runs on both."""
    if request.param == "local":
        async with LocalObjectStore(tmp_path / "objects") as local:
            yield local
    else:
        moto: MotoS3 = request.getfixturevalue("moto_s3")
        async with moto.store(part_size=MIN_PART_SIZE) as s3:
            yield s3
