"""The `ObjectSource` on S3: GetObject, with the body streamed into the core's capped reader."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from ..ports import ObjectGone, OpenedObject

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

_GONE = {"NoSuchKey", "404", "NotFound"}


class S3ObjectSource:
    def __init__(self, client: S3Client) -> None:
        self.client = client
        self.requests = 0

    def open(self, bucket: str, key: str) -> OpenedObject:
        self.requests += 1
        try:
            resp = self.client.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) in _GONE:
                raise ObjectGone(f"s3://{bucket}/{key} no longer exists") from exc
            raise
        # The reader pulls the StreamingBody in chunks: the compressed object is never held whole.
        return OpenedObject(etag=resp.get("ETag", "").strip('"'), body=resp["Body"])
