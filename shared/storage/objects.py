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
    fast_put: bool = Field(True, description="PUT objects with botocore's SigV4 signer over the lean HTTP client "
                                             "(no boto3 request pipeline, no thread hop); boto3 when it cannot")


class _NoFastPath(Exception):
    """No credentials for the signer (permanent), or the lean client could not deliver this one: use boto3."""

    def __init__(self, *, permanent: bool):
        super().__init__("fast path unavailable")
        self.permanent = permanent


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
        if self._fast is not False:
            try:
                return await self._fast_put(key, data, content_type, metadata)
            except _NoFastPath as exc:
                if exc.permanent:
                    self._fast = False
        return await self._call(self._put, key, data, content_type, metadata)

    _fast: bool | None = None
    _creds: Any = None

    async def _fast_put(self, key: str, data: bytes, content_type: str, metadata: dict[str, str] | None) -> str:
        """One signed PUT (SigV4 by botocore's signer, the same credentials chain as boto3) on the hot-path HTTP
        client: a label or a signed document costs ~0.3 ms here instead of ~2.5 ms through boto3's pipeline."""
        import hashlib
        from urllib.parse import quote

        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest

        from shared.integrations.httpclient import ConnectFailed, HttpError, get_client

        s = ObjectStoreSettings()
        if self._fast is None:
            import boto3

            self._creds = boto3.Session().get_credentials() if s.fast_put else None
            if self._creds is None:
                raise _NoFastPath(permanent=True)
            self._fast = True
        path = quote(key, safe="/~")
        url = (f"{self.endpoint_url.rstrip('/')}/{self.bucket}/{path}" if self.endpoint_url
               else f"https://{self.bucket}.s3.{self.region}.amazonaws.com/{path}")
        headers = {"Content-Type": content_type, **{f"x-amz-meta-{k}": v for k, v in (metadata or {}).items()}}
        request = AWSRequest(method="PUT", url=url, data=data, headers=headers)
        S3SigV4Auth(self._creds.get_frozen_credentials(), "s3", self.region).add_auth(request)
        try:
            status, body = await get_client().request(
                "PUT", url, body=data, headers=dict(request.headers.items()),
                timeout_s=s.read_timeout_s, connect_timeout_s=s.connect_timeout_s)
        except (ConnectFailed, HttpError) as exc:  # an overwrite of the same key: safe to retry through boto3
            raise _NoFastPath(permanent=False) from exc
        if status != 200:
            raise RuntimeError(f"S3 PUT {self.bucket}/{key}: HTTP {status} {body[:200]!r}")
        return hashlib.md5(data, usedforsecurity=False).hexdigest()  # a single PUT's ETag

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
