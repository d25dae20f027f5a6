"""`S3ObjectStore`: the object store on any S3-compatible service, through aiobotocore.

Configured by endpoint URL, bucket, region and credentials, so the same code
talks to Cloudflare R2, MinIO and AWS S3. One client (one connection pool) is
created by `open()` and released by `close()`.

Compatibility choices:
- `addressing_style="path"` for MinIO and most self-hosted stores (bucket in the
  path, not the host name); AWS and R2 accept either.
- Request and response checksums only where the operation requires them:
  botocore's newer default (always send CRC32 checksums) is rejected by several
  S3-compatible services.
- `prefix` keeps acechart's objects under one folder of a shared bucket.

Every botocore or connection failure becomes a `StorageError` naming the
operation and key; a missing object becomes `ObjectNotFound`.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Literal, Self

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session
from botocore.exceptions import BotoCoreError, ClientError

from acechart.storage.objects import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_CONTENT_TYPE,
    ObjectInfo,
    ObjectNotFound,
    StorageError,
    check_range,
    validate_key,
    validate_metadata,
    validate_prefix,
)

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

__all__ = ["MIN_PART_SIZE", "S3ObjectStore"]

logger = logging.getLogger(__name__)

#: S3's smallest multipart part (all but the last); also the threshold below
#: which `put_stream` sends one plain PUT instead.
MIN_PART_SIZE = 5 * 1024 * 1024
#: S3's most keys per ListObjectsV2 page and per DeleteObjects request.
_MAX_KEYS_PER_REQUEST = 1000
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


class S3ObjectStore:
    """An `ObjectStore` on an S3-compatible bucket (R2, MinIO, AWS)."""

    def __init__(
        self,
        endpoint_url: str | None,
        bucket: str,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        prefix: str = "",
        *,
        addressing_style: Literal["auto", "path", "virtual"] = "path",
        part_size: int = 8 * 1024 * 1024,
        list_page_size: int = _MAX_KEYS_PER_REQUEST,
        max_connections: int = 32,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 60.0,
        max_attempts: int = 3,
        session: AioSession | None = None,
    ) -> None:
        """Remember the configuration; no I/O until `open()`.

        `endpoint_url` None means AWS itself. Credentials None fall back to
        botocore's usual chain (environment, config files, instance roles).
        `part_size` (>= 5 MiB) is the multipart part size of `put_stream`;
        `list_page_size` (1..1000) the keys asked for per listing request.
        `session` lets many stores share one botocore session, which caches the
        parsed service model (tests create many stores).
        """
        if not bucket:
            raise ValueError("bucket must be non-empty")
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes, got {part_size}")
        if not 1 <= list_page_size <= _MAX_KEYS_PER_REQUEST:
            raise ValueError(f"list_page_size must be in 1..1000, got {list_page_size}")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        validate_prefix(prefix)
        self.endpoint_url = endpoint_url
        self.bucket = bucket
        self.region = region
        self.prefix = prefix
        self.part_size = part_size
        self.list_page_size = list_page_size
        self._access_key = access_key
        self._secret_key = secret_key
        self._session = session
        self._config = AioConfig(
            s3={"addressing_style": addressing_style},
            retries={"max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            max_pool_connections=max_connections,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._stack: contextlib.AsyncExitStack | None = None
        self._client_or_none: S3Client | None = None

    def __repr__(self) -> str:
        return (
            f"S3ObjectStore({self.endpoint_url!r}, bucket={self.bucket!r}, prefix={self.prefix!r})"
        )

    async def open(self) -> Self:
        """Create the client; idempotent."""
        if self._client_or_none is not None:
            return self
        session = self._session or get_session()
        stack = contextlib.AsyncExitStack()
        with _translate("open", None):
            self._client_or_none = await stack.enter_async_context(
                session.create_client(
                    "s3",
                    endpoint_url=self.endpoint_url,
                    region_name=self.region,
                    aws_access_key_id=self._access_key,
                    aws_secret_access_key=self._secret_key,
                    config=self._config,
                )
            )
        self._stack = stack
        return self

    async def close(self) -> None:
        """Close the client and its connection pool; idempotent."""
        stack, self._stack, self._client_or_none = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def create_bucket(self) -> None:
        """Create the bucket if it does not exist yet (for MinIO setups and tests)."""
        client = self._client
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if self.region not in ("us-east-1", "auto"):
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            with _translate("create_bucket", self.bucket):
                await client.create_bucket(**kwargs)
        except StorageError as exc:
            cause = exc.__cause__
            if not (
                isinstance(cause, ClientError)
                and _code(cause) in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists")
            ):
                raise

    # --- reads ------------------------------------------------------------------

    async def get(self, key: str) -> bytes:
        full = self._full_key(key)
        with _translate("get", key):
            resp = await self._client.get_object(Bucket=self.bucket, Key=full)
            async with resp["Body"] as body:
                return await body.read()

    async def get_range(self, key: str, start: int, end: int) -> bytes:
        check_range(start, end)
        full = self._full_key(key)
        if start == end:
            if await self.head(key) is None:
                raise ObjectNotFound(key, operation="get_range")
            return b""
        with _translate("get_range", key):
            try:
                resp = await self._client.get_object(
                    Bucket=self.bucket, Key=full, Range=f"bytes={start}-{end - 1}"
                )
            except ClientError as exc:
                if _code(exc) == "InvalidRange":
                    return b""  # the object exists but starts before `start`
                raise
            async with resp["Body"] as body:
                return await body.read()

    async def iter_chunks(
        self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> AsyncGenerator[bytes, None]:
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        full = self._full_key(key)
        with _translate("iter_chunks", key):
            resp = await self._client.get_object(Bucket=self.bucket, Key=full)
            async with resp["Body"] as body:
                # The network hands over whatever arrived; regroup into full chunks
                # so callers see the same chunking as from the local store.
                pending = bytearray()
                while True:
                    data = await body.read(chunk_size - len(pending))
                    if not data:
                        break
                    pending += data
                    if len(pending) >= chunk_size:
                        yield bytes(pending)
                        pending.clear()
                if pending:
                    yield bytes(pending)

    async def head(self, key: str) -> ObjectInfo | None:
        full = self._full_key(key)
        with _translate("head", key):
            try:
                resp = await self._client.head_object(Bucket=self.bucket, Key=full)
            except ClientError as exc:
                if _code(exc) in _NOT_FOUND_CODES:
                    return None
                raise
        return ObjectInfo(
            key=key,
            size=resp["ContentLength"],
            etag=_etag(resp["ETag"]),
            last_modified=resp["LastModified"].astimezone(UTC),
            metadata=dict(resp.get("Metadata", {})),
            content_type=resp.get("ContentType") or DEFAULT_CONTENT_TYPE,
        )

    async def list(self, prefix: str = "") -> AsyncGenerator[ObjectInfo, None]:
        validate_prefix(prefix)
        paginator = self._client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.bucket,
            Prefix=self.prefix + prefix,
            PaginationConfig={"PageSize": self.list_page_size},
        )
        with _translate("list", prefix):
            async for page in pages:
                for obj in page.get("Contents", []):
                    key = obj["Key"][len(self.prefix) :]
                    try:
                        validate_key(key)
                    except StorageError:
                        logger.debug("skipping foreign object %r in listing", obj["Key"])
                        continue
                    yield ObjectInfo(
                        key=key,
                        size=obj["Size"],
                        etag=_etag(obj["ETag"]),
                        last_modified=obj["LastModified"].astimezone(UTC),
                    )

    # --- writes -----------------------------------------------------------------

    async def put(
        self,
        key: str,
        data: bytes,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectInfo:
        full = self._full_key(key)
        meta = validate_metadata(metadata, key)
        ctype = content_type or DEFAULT_CONTENT_TYPE
        with _translate("put", key):
            resp = await self._client.put_object(
                Bucket=self.bucket, Key=full, Body=data, Metadata=meta, ContentType=ctype
            )
        return ObjectInfo(
            key=key,
            size=len(data),
            etag=_etag(resp["ETag"]),
            last_modified=_response_time(resp),
            metadata=meta,
            content_type=ctype,
        )

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectInfo:
        """Multipart upload in `part_size` parts; one plain PUT when the stream is small.

        Parts go up one at a time, so memory stays near one part. A failure (or
        cancellation) aborts the upload, leaving any previous object in place
        and no orphaned parts billed by the store.
        """
        full = self._full_key(key)
        meta = validate_metadata(metadata, key)
        ctype = content_type or DEFAULT_CONTENT_TYPE
        client = self._client
        buffer = bytearray()
        upload_id: str | None = None
        parts: builtins.list[dict[str, Any]] = []
        size = 0
        try:
            async for chunk in chunks:
                buffer += chunk
                while len(buffer) >= self.part_size:
                    if upload_id is None:
                        with _translate("put_stream", key):
                            created = await client.create_multipart_upload(
                                Bucket=self.bucket, Key=full, Metadata=meta, ContentType=ctype
                            )
                        upload_id = created["UploadId"]
                    part = bytes(buffer[: self.part_size])
                    del buffer[: self.part_size]
                    parts.append(
                        await self._upload_part(key, full, upload_id, len(parts) + 1, part)
                    )
                    size += len(part)
            if upload_id is None:
                return await self.put(key, bytes(buffer), meta, ctype)
            if buffer:
                parts.append(
                    await self._upload_part(key, full, upload_id, len(parts) + 1, bytes(buffer))
                )
                size += len(buffer)
            with _translate("put_stream", key):
                resp = await client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=full,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
                )
        except BaseException:
            if upload_id is not None:
                await asyncio.shield(self._abort(key, full, upload_id))
            raise
        return ObjectInfo(
            key=key,
            size=size,
            etag=_etag(resp.get("ETag", "")),
            last_modified=_response_time(resp),
            metadata=meta,
            content_type=ctype,
        )

    async def delete(self, key: str) -> None:
        full = self._full_key(key)
        with _translate("delete", key):
            await self._client.delete_object(Bucket=self.bucket, Key=full)

    async def delete_many(self, keys: Iterable[str]) -> None:
        """DeleteObjects in batches of 1000; raises on the first key the store refused."""
        full_keys = [self._full_key(key) for key in keys]
        for i in range(0, len(full_keys), _MAX_KEYS_PER_REQUEST):
            batch = full_keys[i : i + _MAX_KEYS_PER_REQUEST]
            with _translate("delete_many", batch[0][len(self.prefix) :]):
                resp = await self._client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )
            errors = resp.get("Errors", [])
            if errors:
                first = errors[0]
                raise StorageError(
                    f"{len(errors)} of {len(batch)} deletes failed, first: "
                    f"{first.get('Code')}: {first.get('Message')}",
                    operation="delete_many",
                    key=first.get("Key", "")[len(self.prefix) :],
                    public=f"{len(errors)} of {len(batch)} deletes failed ({first.get('Code')})",
                )

    # --- helpers ----------------------------------------------------------------

    @property
    def _client(self) -> S3Client:
        if self._client_or_none is None:
            raise StorageError(
                "store is not open (call open() first)", operation="s3", public="store not open"
            )
        return self._client_or_none

    def _full_key(self, key: str) -> str:
        return self.prefix + validate_key(key)

    async def _upload_part(
        self, key: str, full: str, upload_id: str, number: int, data: bytes
    ) -> dict[str, Any]:
        with _translate("put_stream", key):
            resp = await self._client.upload_part(
                Bucket=self.bucket, Key=full, UploadId=upload_id, PartNumber=number, Body=data
            )
        return {"ETag": resp["ETag"], "PartNumber": number}

    async def _abort(self, key: str, full: str, upload_id: str) -> None:
        try:
            await self._client.abort_multipart_upload(
                Bucket=self.bucket, Key=full, UploadId=upload_id
            )
        except (ClientError, BotoCoreError, aiohttp.ClientError, OSError) as exc:
            logger.warning("could not abort multipart upload of %r: %s", key, exc)


@contextlib.contextmanager
def _translate(operation: str, key: str | None) -> Iterator[None]:
    """Turn botocore and connection errors into `ObjectNotFound` / `StorageError`."""
    try:
        yield
    except ClientError as exc:
        if _code(exc) in _NOT_FOUND_CODES and key is not None:
            raise ObjectNotFound(key, operation=operation) from exc
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = exc.response.get("Error", {}).get("Message") or str(exc)
        raise StorageError(
            f"{_code(exc)} (HTTP {status}): {message}",
            operation=operation,
            key=key,
            public=f"{_code(exc) or 'error'} (HTTP {status})",
        ) from exc
    except (BotoCoreError, aiohttp.ClientError, OSError, TimeoutError) as exc:
        # Not str(exc) in public: a connection error names the endpoint URL, bucket and key.
        raise StorageError(
            f"{type(exc).__name__}: {exc}",
            operation=operation,
            key=key,
            public=type(exc).__name__,
        ) from exc


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _etag(raw: str) -> str:
    """S3 quotes ETags (`"abc"`); the protocol reports them bare."""
    return raw.strip('"')


def _response_time(resp: Mapping[str, Any]) -> datetime:
    """The server's Date header (S3 does not return Last-Modified on writes)."""
    date = resp.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if date:
        with contextlib.suppress(TypeError, ValueError):
            return parsedate_to_datetime(date).astimezone(UTC)
    return datetime.now(UTC)
