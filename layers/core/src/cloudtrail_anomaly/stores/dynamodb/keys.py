"""The baseline table's keys: how a principal and an action become its `pk` and `sk` (the
schema is in baseline.py's docstring), within DynamoDB's key size limits, and its TTL attribute.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ...domain.model import TupleKey

TTL_ATTRIBUTE = "expires_at"  # a Number of epoch seconds (a String is never expired)
FIRST_SEEN_SK = "#first_seen"
WINDOW_SK = "#window"
MARK_SK = "#mark#"
_PK_LIMIT, _SK_LIMIT = 2048, 1024  # DynamoDB's key size limits, in bytes


def partition_key(account_id: str, principal: str) -> str:
    return _fit(f"P#{account_id}#{principal}", _PK_LIMIT)


def tuple_sort_key(action: str) -> str:
    return _fit(f"A#{action}", _SK_LIMIT)


def tuple_key(key: TupleKey) -> dict[str, Any]:
    """A tuple's item key (pk, sk)."""
    return {
        "pk": {"S": partition_key(key.account_id, key.principal)},
        "sk": {"S": tuple_sort_key(key.action)},
    }


def _fit(value: str, limit: int) -> str:
    """The value itself, or, past DynamoDB's key size limit, a prefix of it plus its digest."""
    raw = value.encode()
    if len(raw) <= limit:
        return value
    digest = hashlib.sha256(raw).hexdigest()
    return raw[: limit - 80].decode(errors="ignore") + "#sha256:" + digest
