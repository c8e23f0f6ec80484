"""The JSON Lines sink: one alert document a line, on a stream (stdout, the Lambda log, a file the
caller opened) or appended to a file by path.

The CLI writes its alerts with it, and the real-time function falls back to it (the Lambda log)
when no sink is configured. "Delivered" means on disk: a regular file is fsynced before anything
is reported delivered.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from ..ports import DeliveryReport, PendingAlert


class JsonLinesSink:
    """Alerts as JSON Lines: on a binary stream (stdout, the Lambda log, a file the caller
    opened), or appended to a file by path.

    Nothing is reported delivered before it is on disk: when the output is a regular file, it is
    flushed and fsynced first (`fsync=False` skips that, for tests). A path is opened in append
    mode at every batch, never truncated, so alerts written by an earlier run stay; a file
    rotated or removed between batches is created again. A path that cannot be opened is a
    configuration error; a failed write (a full disk) keeps the batch pending, and may leave a
    partial line (readers dedup on alert_id)."""

    name = "jsonl"

    def __init__(self, target: IO[bytes] | Path | str, *, fsync: bool = True) -> None:
        self.path: Path | None = None
        self.stream: IO[bytes] | None = None
        if isinstance(target, (Path, str)):
            self.path = Path(target)
        else:
            self.stream = target
        self.fsync = fsync

    def __repr__(self) -> str:
        where = str(self.path) if self.path is not None else getattr(self.stream, "name", "stream")
        return f"{type(self).__name__}({where!r})"

    def deliver(self, alerts: Sequence[PendingAlert]) -> DeliveryReport:
        report = DeliveryReport()
        if not alerts:
            return report
        ids = [a.alert_id for a in alerts]
        data = b"".join(a.document + b"\n" for a in alerts)
        if self.stream is not None:
            problem = self._write(self.stream, data)
        else:
            assert self.path is not None
            try:
                f = self.path.open("ab")
            except OSError as exc:
                # Missing folder, permissions: nothing works until someone fixes the path.
                reason = f"cannot open {self.path}: {exc.strerror or exc}"
                report.pending = dict.fromkeys(ids, reason)
                report.config_error = reason
                return report
            with f:
                problem = self._write(f, data)
        if problem:
            report.pending = dict.fromkeys(ids, problem)
            return report
        report.delivered = ids
        report.counters["events_sent"] += len(ids)
        return report

    def _write(self, out: IO[bytes], data: bytes) -> str:
        """Write, flush and (for a regular file) fsync; the reason it failed, or ""."""
        try:
            out.write(data)
            out.flush()
            if self.fsync:
                fd = _regular_file_fd(out)
                if fd is not None:
                    os.fsync(fd)
        except OSError as exc:
            where = str(self.path) if self.path else str(getattr(out, "name", "the output"))
            return f"cannot write {where}: {exc.strerror or exc}"
        return ""


def _regular_file_fd(out: IO[bytes]) -> int | None:
    """The descriptor of `out` when it is a regular file (fsync means something there; on a
    pipe or a terminal it fails), else None."""
    try:
        fd = out.fileno()
        return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None
    except (AttributeError, ValueError, OSError):  # io.UnsupportedOperation is an OSError
        return None
