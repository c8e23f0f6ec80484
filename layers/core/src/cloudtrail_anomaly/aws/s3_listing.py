"""The `ObjectLister` on S3: ListObjectsV2, page by page, read only as far as the caller goes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..ports import ListedObject

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client


class S3ObjectLister:
    def __init__(self, client: S3Client) -> None:
        self.client = client
        self.requests = 0

    def _pages(self, **kwargs: Any) -> Iterator[Any]:
        token = ""
        while True:
            if token:
                kwargs["ContinuationToken"] = token
            self.requests += 1
            page: Any = self.client.list_objects_v2(**kwargs)
            yield page
            token = page.get("NextContinuationToken", "")
            if not page.get("IsTruncated") or not token:
                return

    def list_objects(
        self, bucket: str, prefix: str, start_after: str = ""
    ) -> Iterator[ListedObject]:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        if start_after:
            kwargs["StartAfter"] = start_after
        for page in self._pages(**kwargs):
            for obj in page.get("Contents", []):
                yield ListedObject(
                    obj["Key"], str(obj.get("ETag", "")).strip('"'), obj.get("Size", 0)
                )

    def list_folders(self, bucket: str, prefix: str) -> list[str]:
        names: list[str] = []
        for page in self._pages(Bucket=bucket, Prefix=prefix, Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                name = str(common.get("Prefix", ""))[len(prefix) :].rstrip("/")
                if name:
                    names.append(name)
        return names
