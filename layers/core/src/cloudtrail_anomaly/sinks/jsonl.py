"""JSON Lines sinks: one alert document a line, on a stream (stdout, the Lambda log) or in a file.

There is one implementation, `delivery.JsonLinesSink` (the CLI and the Lambda fallback use it
from there): given a path it appends to the file at every batch, never truncating it, and
fsyncs before it reports anything delivered, so "delivered" means on disk. `JsonLinesFileSink`
is its file form under its own name.
"""

from __future__ import annotations

from pathlib import Path

from ..usecases.deliver import JsonLinesSink

__all__ = ["JsonLinesFileSink", "JsonLinesSink"]


class JsonLinesFileSink(JsonLinesSink):
    """Alerts appended as JSON Lines to a file (created if absent, never truncated)."""

    name = "jsonl_file"

    def __init__(self, path: Path | str, *, fsync: bool = True) -> None:
        super().__init__(Path(path), fsync=fsync)
