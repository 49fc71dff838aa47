"""Object storage through the S3 API (boto3; `S3_ENDPOINT_URL` for MinIO/Ceph/moto). boto3 is imported
on first use, so functions that never read objects never pay for it."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ObjectStoreSettings(BaseSettings):
    """How long one S3 call may take (`DVCI_S3_*`): the worst case, attempts x (connect + read), stays
    inside a request's deadline (DVCI_REQUEST_DEADLINE_S, 10 s)."""

    model_config = SettingsConfigDict(env_prefix="DVCI_S3_", extra="ignore")

    connect_timeout_s: float = Field(2.0, gt=0)
    read_timeout_s: float = Field(3.0, gt=0)
    max_attempts: int = Field(2, ge=1, le=3, description="Attempts per call, the first included")


class ObjectStoreUnavailable(ConnectionError):
    """The object store did not answer in time or could not be reached (a 503 for the event: retried)."""


class ObjectTooLarge(ValueError):
    def __init__(self, key: str, size: int, limit: int):
        super().__init__(f"{key} is {size} bytes, over the {limit}-byte limit")
        self.size = size


class ObjectMissing(LookupError):
    pass


class ObjectStore:
    def __init__(self, bucket: str, endpoint_url: str | None = None, region: str = "ap-southeast-1"):
        self.bucket, self.endpoint_url, self.region = bucket, endpoint_url, region
        self._client: Any = None

    def _s3(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            s = ObjectStoreSettings()
            config = Config(connect_timeout=s.connect_timeout_s, read_timeout=s.read_timeout_s,
                            retries={"total_max_attempts": s.max_attempts, "mode": "standard"})
            self._client = boto3.client("s3", endpoint_url=self.endpoint_url, region_name=self.region, config=config)
        return self._client

    @staticmethod
    async def _call(fn: Any, *args: Any) -> Any:
        """Run a blocking S3 call in a thread; connection failures and timeouts become ObjectStoreUnavailable."""
        from botocore.exceptions import ConnectionError as BotoConnectionError
        from botocore.exceptions import HTTPClientError

        try:
            return await asyncio.to_thread(fn, *args)
        except (BotoConnectionError, HTTPClientError) as exc:  # timeouts included (ReadTimeoutError, ...)
            raise ObjectStoreUnavailable(f"object store unreachable: {type(exc).__name__}") from exc

    def _get(self, key: str, max_bytes: int) -> bytes:
        from botocore.exceptions import ClientError

        try:
            size = int(self._s3().head_object(Bucket=self.bucket, Key=key)["ContentLength"])
            if size > max_bytes:
                raise ObjectTooLarge(key, size, max_bytes)
            return bytes(self._s3().get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise ObjectMissing(f"no object {key!r} in bucket {self.bucket}") from exc
            raise

    async def get(self, key: str, max_bytes: int) -> bytes:
        """The object's bytes; ObjectTooLarge before downloading anything over `max_bytes`."""
        return await self._call(self._get, key, max_bytes)

    def _put(self, key: str, data: bytes, content_type: str, metadata: dict[str, str] | None) -> str:
        reply = self._s3().put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type,
                                      Metadata=metadata or {})
        return str(reply.get("ETag", "")).strip('"')

    async def put(self, key: str, data: bytes, content_type: str = "application/octet-stream",
                  metadata: dict[str, str] | None = None) -> str:
        """Write the object (replacing any object under `key`); returns its ETag."""
        return await self._call(self._put, key, data, content_type, metadata)

    def _exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._s3().head_object(Bucket=self.bucket, Key=key)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    async def exists(self, key: str) -> bool:
        return await self._call(self._exists, key)
