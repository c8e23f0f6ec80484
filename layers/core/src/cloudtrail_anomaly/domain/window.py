"""A principal's burst window: the new actions it was alerted on lately, bounded in size.

The window is stored with the principal's claims (one DynamoDB item, one SQLite row), so its
size is bounded here, for every store alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from .model import WindowEntry

# A principal's burst window holds at most this many entries (the newest), and at most this
# much JSON: it is one DynamoDB item (400 KB at most), written with the claims. Either bound is
# far above any burst threshold, so the rule only ever counts fewer entries than it would
# without them when one principal does hundreds of new things within the window.
MAX_WINDOW_ENTRIES = 500
MAX_WINDOW_BYTES = 100_000


def merge_window(
    current: Sequence[WindowEntry], entries: Sequence[WindowEntry], window_s: int
) -> list[WindowEntry]:
    """The window after adding `entries`: deduplicated, sorted, within `window_s` of the newest,
    and within MAX_WINDOW_ENTRIES and MAX_WINDOW_BYTES (the newest entries are kept)."""
    merged = sorted(set(current) | set(entries))
    if not merged:
        return merged
    horizon = merged[-1].event_time - window_s
    kept: list[WindowEntry] = []
    size = 2  # the JSON list's brackets
    for e in reversed(merged):
        size += len(encode_window_entry(e)) + 1
        if e.event_time < horizon or len(kept) == MAX_WINDOW_ENTRIES or size > MAX_WINDOW_BYTES:
            break
        kept.append(e)
    kept.reverse()
    return kept


def encode_window_entry(entry: WindowEntry) -> bytes:
    """One window entry as the stores keep it (a JSON array)."""
    return orjson.dumps(list(entry))


def encode_window(entries: Sequence[WindowEntry]) -> str:
    return orjson.dumps([list(e) for e in entries]).decode()


def decode_window(text: str | bytes) -> list[WindowEntry]:
    return [WindowEntry(*e) for e in orjson.loads(text)]
