"""Documents in object storage (S3 API): read with a size limit, look up an output, write an output once
(conditional put: a second, different signed file is never written under the same key)."""

from __future__ import annotations

import asyncio
from typing import Any

from shared.storage.objects import ObjectMissing, ObjectStore, ObjectTooLarge

__all__ = ["DocumentStore", "ObjectMissing", "ObjectTooLarge"]


class DocumentStore:
    def __init__(self, bucket: str, endpoint_url: str | None = None):
        self.objects = ObjectStore(bucket, endpoint_url)
        self.bucket = bucket

    def _s3(self) -> Any:
        return self.objects._s3()

    async def get(self, key: str, max_bytes: int) -> bytes:
        return await self.objects.get(key, max_bytes)

    def _head(self, key: str) -> dict[str, str] | None:
        from botocore.exceptions import ClientError

        try:
            res = self._s3().head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return {k.lower(): v for k, v in dict(res.get("Metadata") or {}).items()}

    async def head(self, key: str) -> dict[str, str] | None:
        """The object's metadata, None when absent."""
        return await asyncio.to_thread(self._head, key)

    def _put_new(self, key: str, data: bytes, content_type: str, metadata: dict[str, str]) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._s3().put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type,
                                  Metadata=metadata, IfNoneMatch="*")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412",
                                                              "ConditionalRequestConflict"):
                return False
            raise
        return True

    async def put_new(self, key: str, data: bytes, content_type: str, metadata: dict[str, str]) -> bool:
        """Write unless the key exists (If-None-Match: *); False when it existed."""
        return await asyncio.to_thread(self._put_new, key, data, content_type, metadata)

    def _put(self, key: str, data: bytes, content_type: str) -> None:
        self._s3().put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(self._put, key, data, content_type)
