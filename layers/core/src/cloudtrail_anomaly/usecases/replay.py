"""Local mode: run CloudTrail files from disk through the detector, in delivery order.

Files are ordered as CloudTrail delivered them (the stamp in the file name, then the name), so a
replay of history produces the same alerts as having run live. Every object is isolated: a bad
file is reported and counted, and the replay goes on.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from ..domain.detector import Detector, ObjectResult
from ..domain.model import PrincipalKey
from ..trail.keys import KeyKind, classify_local_path, delivery_sort_key
from ..trail.reader import DEFAULT_MAX_BYTES, EmptyObject, ObjectError, read_compact

_LOG_SUFFIXES = (".json", ".json.gz", ".gz")


@dataclass(slots=True)
class ReplaySummary:
    stats: Counter[str] = field(default_factory=Counter)
    principals: set[PrincipalKey] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    def add(self, result: ObjectResult) -> None:
        self.stats.update(result.stats)
        self.principals |= result.principals


def discover(paths: Sequence[Path], stats: Counter[str]) -> list[Path]:
    """Files named directly, plus log-like files found recursively under named folders."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            for child in path.rglob("*"):
                if not child.is_file():
                    continue
                if child.name.endswith(_LOG_SUFFIXES):
                    found.append(child)
                else:
                    stats["objects_skipped.not_a_log_file"] += 1
        elif path.exists():
            found.append(path)
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
    found.sort(key=lambda p: delivery_sort_key(p.as_posix()))
    return found


def replay(
    paths: Sequence[Path],
    detector: Detector,
    on_result: Callable[[ObjectResult], None],
    max_bytes: int = DEFAULT_MAX_BYTES,
    progress: TextIO | None = None,
) -> ReplaySummary:
    summary = ReplaySummary()
    files = discover(paths, summary.stats)
    for done, path in enumerate(_with_progress(files, progress), 1):
        del done
        result = process_file(path, detector, summary, max_bytes)
        if result is not None:
            summary.add(result)
            on_result(result)
    return summary


def process_file(
    path: Path, detector: Detector, summary: ReplaySummary, max_bytes: int
) -> ObjectResult | None:
    name = path.as_posix()
    stats = summary.stats
    classified = classify_local_path(name)
    if classified.kind is KeyKind.SKIP:
        stats[f"objects_skipped.{classified.reason}"] += 1
        return None
    account = region = ""
    if classified.log_key is not None:
        account, region = classified.log_key.account_id, classified.log_key.region
    else:
        # Local files may have any name: read them, but say that the name told us nothing.
        stats["objects_unrecognized_name"] += 1
    try:
        with path.open("rb") as fh:
            records = read_compact(fh, max_bytes)
    except EmptyObject:
        stats["objects_skipped.empty_object"] += 1
        return None
    except ObjectError as exc:
        stats[f"objects_failed.{exc.reason}"] += 1
        summary.errors.append(f"{name}: {exc}")
        return None
    except OSError as exc:
        stats["objects_failed.read_error"] += 1
        summary.errors.append(f"{name}: cannot read: {exc.strerror}")
        return None
    stats["objects"] += 1
    return detector.process(records, name, account, region)


def _with_progress(files: list[Path], out: TextIO | None) -> Iterator[Path]:
    if out is None or not out.isatty():
        yield from files
        return
    total = len(files)
    step = max(1, total // 200)
    for i, path in enumerate(files, 1):
        if i % step == 0 or i == total:
            out.write(f"\r  replaying {i:,}/{total:,} objects ({100 * i // max(total, 1)}%)")
            out.flush()
        yield path
    out.write("\n")


def format_summary(summary: ReplaySummary, out: TextIO | None = None) -> None:
    out = out or sys.stderr  # looked up now: callers may have redirected it
    s = summary.stats
    alerts = {k.split(".", 1)[1]: v for k, v in s.items() if k.startswith("alerts.")}
    out.write(
        f"objects: {s['objects']:,} read, "
        f"{sum(v for k, v in s.items() if k.startswith('objects_skipped.')):,} skipped, "
        f"{sum(v for k, v in s.items() if k.startswith('objects_failed.')):,} failed\n"
        f"records: {s['records']:,} ({s['events']:,} used, "
        f"{sum(v for k, v in s.items() if k.startswith('records_skipped.')):,} skipped)\n"
        f"principals: {len(summary.principals):,}   new tuples: {s['new_tuples']:,}\n"
        f"alerts: {sum(alerts.values()):,}"
        + (
            " (" + ", ".join(f"{k} {v:,}" for k, v in sorted(alerts.items())) + ")"
            if alerts
            else ""
        )
        + "\n"
    )
    details = sorted(
        (k, v)
        for k, v in s.items()
        if k.startswith(
            ("objects_skipped.", "objects_failed.", "records_skipped.", "suppressed_tuples.")
        )
        or k == "objects_unrecognized_name"
    )
    for key, value in details:
        out.write(f"  {key}: {value:,}\n")
    for err in summary.errors[:20]:
        out.write(f"error: {err}\n")
    if len(summary.errors) > 20:
        out.write(f"error: ... and {len(summary.errors) - 20} more\n")
