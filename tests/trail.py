"""A CloudTrail bucket on disk for the reconciliation tests: log objects and digest files laid
out as an organization trail writes them, and the bucket's S3 side (`ObjectSource` and
`ObjectLister`) over the folder.

Digest files are the real format: AWS's own example (tests/fixtures, CloudTrail-Digest) with
this trail's values put in: `digestStartTime`/`digestEndTime`, `logFiles[]` with `s3Bucket`,
`s3Object`, `hashValue` (SHA-256 of the object), `newestEventTime`/`oldestEventTime`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from cloudtrail_anomaly.domain.model import iso
from cloudtrail_anomaly.ports import (
    ListedObject,
    ObjectGone,
    OpenedObject,
)
from cloudtrail_anomaly.trail.layout import TrailLayout

from tests.builders import user_record
from tests.helpers import DIGESTS

ORG = "o-abcdefghij"
ACCOUNT = "123456789012"
REGION = "us-east-1"
BUCKET = "org-trail-logs"
TRAIL = "org-trail"
LAYOUT = TrailLayout(BUCKET, "", ORG)


def at(hh: int, mm: int, ss: int = 0) -> int:
    """Epoch seconds of 2024-06-01 hh:mm:ss UTC."""
    return int(datetime(2024, 6, 1, hh, mm, ss, tzinfo=UTC).timestamp())


def stamp(t: int, fmt: str = "%Y%m%dT%H%MZ") -> str:
    return datetime.fromtimestamp(t, UTC).strftime(fmt)


def log_key(t: int, uid: str, account: str = ACCOUNT, region: str = REGION) -> str:
    day = datetime.fromtimestamp(t, UTC).date()
    folder = LAYOUT.log_folder(account, region, day)
    return f"{folder}{account}_CloudTrail_{region}_{stamp(t)}_{uid}.json.gz"


def digest_key(end: int, account: str = ACCOUNT, region: str = REGION) -> str:
    day = datetime.fromtimestamp(end, UTC).date()
    folder = LAYOUT.digest_folder(account, region, day)
    return (
        f"{folder}{account}_CloudTrail-Digest_{region}_{TRAIL}_{region}_"
        f"{stamp(end, '%Y%m%dT%H%M%SZ')}.json.gz"
    )


class DiskBucket:
    """One S3 bucket as a folder: `ObjectSource` and `ObjectLister` over `<root>/<key>`."""

    def __init__(self, root: Path, name: str = BUCKET) -> None:
        self.root = root
        self.name = name
        self.opened: list[str] = []
        self.listings = 0

    def put(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def etag(self, key: str) -> str:
        return hashlib.md5((self.root / key).read_bytes(), usedforsecurity=False).hexdigest()

    def stored_keys(self) -> list[str]:
        return sorted(
            p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file()
        )

    def open(self, bucket: str, key: str) -> OpenedObject:
        path = self.root / key
        if bucket != self.name or not path.is_file():
            raise ObjectGone(key)
        self.opened.append(key)
        return OpenedObject(f'"{self.etag(key)}"', io.BytesIO(path.read_bytes()))

    def list_objects(
        self, bucket: str, prefix: str, start_after: str = ""
    ) -> Iterator[ListedObject]:
        assert bucket == self.name
        self.listings += 1
        for key in self.stored_keys():
            if key.startswith(prefix) and key > start_after:
                yield ListedObject(key, self.etag(key), (self.root / key).stat().st_size)

    def list_folders(self, bucket: str, prefix: str) -> list[str]:
        assert bucket == self.name
        self.listings += 1
        return sorted(
            {
                k[len(prefix) :].split("/", 1)[0]
                for k in self.stored_keys()
                if k.startswith(prefix) and "/" in k[len(prefix) :]
            }
        )


def log_object(records: list[dict[str, Any]]) -> bytes:
    return gzip.compress(orjson.dumps({"Records": records}), mtime=0)


def digest_document(
    end: int,
    files: Sequence[tuple[str, bytes, list[dict[str, Any]]]],
    account: str = ACCOUNT,
    region: str = REGION,
) -> bytes:
    """A digest in AWS's format for the hour ending `end`, listing these (key, body, records)."""
    doc = orjson.loads(gzip.decompress(DIGESTS[0].read_bytes()))
    times = [r["eventTime"] for _, _, recs in files for r in recs]
    doc.update(
        awsAccountId=account,
        digestStartTime=iso(end - 3600),
        digestEndTime=iso(end),
        digestS3Bucket=BUCKET,
        digestS3Object=digest_key(end, account, region),
        newestEventTime=max(times) if times else None,
        oldestEventTime=min(times) if times else None,
        previousDigestS3Bucket=BUCKET,
        previousDigestS3Object=digest_key(end - 3600, account, region),
        logFiles=[
            {
                "s3Bucket": BUCKET,
                "s3Object": key,
                "hashValue": hashlib.sha256(body).hexdigest(),
                "hashAlgorithm": "SHA-256",
                "newestEventTime": max(r["eventTime"] for r in recs),
                "oldestEventTime": min(r["eventTime"] for r in recs),
            }
            for key, body, recs in files
        ],
    )
    return gzip.compress(orjson.dumps(doc, option=orjson.OPT_INDENT_2), mtime=0)


def twenty_files(bucket: DiskBucket) -> list[tuple[str, bytes, list[dict[str, Any]]]]:
    """A history object (20 users, a month before), then 20 objects delivered 08:41..09:38,
    object i with one new action of user i (one alert each) beside a known one; the digest of
    09:40:31 lists the 20, the one before it (08:40:31) the history object."""
    history_key = log_key(at(8, 35), "history")
    history = [
        user_record("iam.amazonaws.com:GetUser", at(8, 30) - 30 * 86_400 + i, f"u{i:02d}")
        for i in range(20)
    ]
    bucket.put(history_key, log_object(history))
    files = []
    for i in range(20):
        t = at(8, 41) + i * 180
        records = [
            user_record("iam.amazonaws.com:GetUser", t - 60, f"u{i:02d}"),
            user_record(f"iam.amazonaws.com:CreateThing{i:02d}", t - 30, f"u{i:02d}"),
        ]
        key = log_key(t, f"f{i:02d}Q7")
        body = log_object(records)
        bucket.put(key, body)
        files.append((key, body, records))
    bucket.put(
        digest_key(at(8, 40, 31)),
        digest_document(at(8, 40, 31), [(history_key, log_object(history), history)]),
    )
    bucket.put(digest_key(at(9, 40, 31)), digest_document(at(9, 40, 31), files))
    return [(history_key, log_object(history), history), *files]
