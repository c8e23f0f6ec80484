"""CloudTrail's digest files: the hourly list of every log object a trail delivered.

A digest (`CloudTrail-Digest/`, hourly per account, region and trail, written even for empty
hours) names its account, region, trail and delivery time in its name and lists its log objects
in `logFiles[].s3Object`. The reconciliation takes them as the ground truth of what was
delivered (usecases/reconcile.py); nothing here reads S3.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

from .reader import ObjectError

DIGEST_MAX_BYTES = 64 << 20  # a digest lists an hour of objects: a few hundred KB at most

_DIGEST_NAME = re.compile(
    r"^(?P<account>[0-9]{12})_CloudTrail-Digest_(?P<region>[a-z0-9-]+)_(?P<trail>[A-Za-z0-9._-]+)_"
    r"(?P=region)_(?P<stamp>[0-9]{8}T[0-9]{6}Z)\.json(?:\.gz)?\Z"
)


@dataclass(frozen=True, slots=True)
class Digest:
    """One digest file: which trail, account and region, and the log objects it lists."""

    key: str
    account: str
    region: str
    trail: str
    delivered_at: int  # the time in its name: the end of the hour it covers
    log_files: tuple[tuple[str, str], ...] = ()  # (bucket, key)


def digest_name(key: str) -> re.Match[str] | None:
    return _DIGEST_NAME.match(key.rsplit("/", 1)[-1])


def parse_digest(data: bytes, key: str) -> tuple[tuple[str, str], ...]:
    """The (bucket, key) of each log object a digest lists; `ObjectError` if it is not one."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ObjectError("invalid_json", f"digest {key}: invalid JSON: {exc}") from exc
    files = doc.get("logFiles") if isinstance(doc, dict) else None
    if not isinstance(files, list):
        raise ObjectError("not_a_digest", f"digest {key}: no logFiles list")
    out: list[tuple[str, str]] = []
    for entry in files:
        if isinstance(entry, dict):
            bucket, obj = entry.get("s3Bucket"), entry.get("s3Object")
            if isinstance(bucket, str) and isinstance(obj, str):
                out.append((bucket, obj))
    return tuple(out)
