"""The hourly reconciliation: every log object CloudTrail delivered is processed, and we can say so.

S3 → Lambda delivery is at least once, but events can be dropped when the function is throttled
and SQS messages can run out of retries. Once an hour, for the window ending `lag` minutes
before the scheduled time (`now`, the only clock here, and a parameter):

1. Ground truth: CloudTrail's digest files (`CloudTrail-Digest/`, hourly per account, region and
   trail, written even for empty hours; trail/digests.py) list every log object delivered
   (`logFiles[].s3Object`).
   Each digest delivered in the window is read and its objects are looked up in the ledger.
   A trail whose digests stop (one in the previous window, none in this one) is reported: a
   warning and a metric (log file validation turned off, or the trail stopped logging).
2. Without digests for an account and region, the window's log folders are listed instead; an
   object's name carries its delivery time.
3. Every object missing from the ledger is processed now by the real-time use case
   (`RealtimeProcessor`: direct S3 read, the same detector, the same outbox and ledger).
4. Athena: the tuples of the missed objects (or, in "full" mode, of every object delivered in
   the window) are read from the CloudTrail table and run through the same detector, so an
   object the function cannot read (beyond its size cap, say) is still detected. Nothing
   missed, nothing queried: a complete hour scans no byte.
5. The outbox's pending alerts are delivered.

Running twice, or late, is harmless: the ledger makes a second run find nothing missed, and
the baseline's atomic claims make an alert happen once whoever detects it first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from ..athena.queries import PATH_COLUMN, missed_scopes, row_records, window_scopes
from ..athena.table import AthenaTable
from ..domain.model import span_label
from ..ports import (
    ListedObject,
    ObjectGone,
    ObjectLister,
    ObjectRef,
    ProcessedObject,
    QueryFailed,
    Row,
)
from ..trail.digests import DIGEST_MAX_BYTES, Digest, digest_name, parse_digest
from ..trail.keys import ACCOUNT_RE, REGION_RE, KeyKind, classify_key, delivery_sort_key
from ..trail.layout import SqlInputError, TrailLayout, days_between
from ..trail.reader import ObjectError, read_bytes
from .deliver import DeliverySummary
from .ingest import ObjectOutcome, ObjectStatus, RealtimeProcessor

MINUTE = 60

AthenaMode = Literal["missed", "full", "off"]


@dataclass(frozen=True, slots=True)
class Window:
    """[start, end) in epoch seconds, whole minutes (log object names have minute precision)."""

    start: int
    end: int

    @property
    def label(self) -> str:
        return span_label(self.start, self.end)


def reconcile_window(now: int, lag_minutes: float = 30, length_minutes: float = 60) -> Window:
    """The `length_minutes` ending `lag_minutes` before `now` (the scheduled time), in whole
    minutes: an hourly schedule gives windows that tile time."""
    end = int(now - lag_minutes * MINUTE) // MINUTE * MINUTE
    return Window(end - int(length_minutes * MINUTE), end)


@dataclass(frozen=True, slots=True)
class ReconcileSettings:
    lag_minutes: float = 30.0  # CloudTrail delivers within ~15 minutes; digests hourly
    window_minutes: float = 60.0
    # A trail whose digests were in this period before the window, and are not in it, is
    # reported missing.
    digest_lookback_minutes: float = 60.0
    athena: AthenaMode = "missed"
    max_paths_per_query: int = 1000


@dataclass(slots=True)
class ReconcileReport:
    """What one run found and did; `stats` holds the counters the handler publishes."""

    window: Window
    stats: Counter[str] = field(default_factory=Counter)
    missing_digests: list[str] = field(default_factory=list)  # digest folders gone quiet
    failed: list[tuple[str, str]] = field(default_factory=list)  # (key, reason)
    warnings: list[str] = field(default_factory=list)
    outcomes: list[ObjectOutcome] = field(default_factory=list)
    delivery: DeliverySummary | None = None
    athena_error: str = ""

    @property
    def complete(self) -> bool:
        """Every expected object is processed (or was found gone, or detected through Athena)."""
        return not self.failed


def discover_pairs(
    lister: ObjectLister,
    layout: TrailLayout,
    accounts: Iterable[str] = (),
    regions: Iterable[str] = (),
    stats: Counter[str] | None = None,
) -> list[tuple[str, str]]:
    """The (account, region) pairs of a trail: from the config when it names them, else from
    the bucket's folders (accounts under AWSLogs/, regions under each account's CloudTrail and
    CloudTrail-Digest folders). Names that are not account ids or regions are counted, not used."""
    stats = stats if stats is not None else Counter()
    found = list(accounts)
    if not found:
        for name in lister.list_folders(layout.bucket, layout.root):
            if ACCOUNT_RE.match(name):
                found.append(name)
            else:
                stats["folders_ignored"] += 1
    pairs: set[tuple[str, str]] = set()
    for account in found:
        names = set(regions)
        if not names:
            root = layout.account_root(account)
            for kind in ("CloudTrail/", "CloudTrail-Digest/"):
                for name in lister.list_folders(layout.bucket, root + kind):
                    if REGION_RE.match(name):
                        names.add(name)
                    else:
                        stats["folders_ignored"] += 1
        pairs.update((account, r) for r in names)
    return sorted(pairs)


class Reconciler:
    def __init__(
        self,
        processor: RealtimeProcessor,
        lister: ObjectLister,
        layout: TrailLayout,
        *,
        settings: ReconcileSettings | None = None,
        accounts: Iterable[str] = (),
        regions: Iterable[str] = (),
        table: AthenaTable | None = None,
    ) -> None:
        self.processor = processor
        self.lister = lister
        self.layout = layout
        self.settings = settings or ReconcileSettings()
        self.accounts = tuple(accounts)
        self.regions = tuple(regions)
        self.table = table

    @property
    def bucket(self) -> str:
        return self.layout.bucket

    # -- what to look at -------------------------------------------------------------------------

    def pairs(self, stats: Counter[str]) -> list[tuple[str, str]]:
        return discover_pairs(self.lister, self.layout, self.accounts, self.regions, stats)

    def _digests(self, account: str, region: str, start: int, end: int) -> list[Digest]:
        """The digests of this account and region delivered in [start, end), from their names."""
        out: list[Digest] = []
        for day in days_between(start, end):
            folder = self.layout.digest_folder(account, region, day)
            for obj in self.lister.list_objects(self.bucket, folder):
                m = digest_name(obj.key)
                if m is None or m["account"] != account or m["region"] != region:
                    continue
                t = int(
                    datetime.strptime(m["stamp"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
                )
                if start <= t < end:
                    out.append(Digest(obj.key, account, region, m["trail"], t))
        return out

    def _read_digest(self, digest: Digest) -> Digest | None:
        try:
            opened = self.processor.source.open(self.bucket, digest.key)
        except ObjectGone:
            return None
        try:
            data = read_bytes(opened.body, DIGEST_MAX_BYTES)
        finally:
            opened.body.close()
        return Digest(
            digest.key,
            digest.account,
            digest.region,
            digest.trail,
            digest.delivered_at,
            parse_digest(data, digest.key),
        )

    def _listed(
        self,
        account: str,
        region: str,
        day: date,
        span: tuple[int, int] | None,
        cache: dict[Any, dict[str, ListedObject]],
    ) -> dict[str, ListedObject]:
        """Log objects of one folder, those delivered in the minutes [lo, hi) when `span` is
        given: names sort by delivery time, so the listing starts and stops there."""
        ck = (account, region, day, span)
        if ck not in cache:
            folder = self.layout.log_folder(account, region, day)
            start_after, stop = "", ""
            if span is not None:
                lo, hi = span
                if datetime.fromtimestamp(lo, UTC).date() == day:
                    start_after = self.layout.log_name_start(account, region, lo)
                if datetime.fromtimestamp(hi, UTC).date() == day:
                    stop = self.layout.log_name_start(account, region, hi)
            found: dict[str, ListedObject] = {}
            for obj in self.lister.list_objects(self.bucket, folder, start_after):
                if stop and obj.key >= stop:
                    break
                found[obj.key] = obj
            cache[ck] = found
        return cache[ck]

    # -- the run ---------------------------------------------------------------------------------

    def run(self, now: int) -> ReconcileReport:
        s = self.settings
        window = reconcile_window(now, s.lag_minutes, s.window_minutes)
        report = ReconcileReport(window)
        stats = report.stats
        pairs = self.pairs(stats)
        stats["pairs"] = len(pairs)
        expected: dict[str, str] = {}  # key -> etag (or "" when the bucket no longer has it)
        listing_cache: dict[Any, dict[str, ListedObject]] = {}
        lookback = int(s.digest_lookback_minutes * MINUTE)
        for account, region in pairs:
            digests = self._digests(account, region, window.start - lookback, window.end)
            current = [d for d in digests if d.delivered_at >= window.start]
            before = {d.trail for d in digests if d.delivered_at < window.start}
            for trail in sorted(before - {d.trail for d in current}):
                folder = self.layout.digest_folder(
                    account, region, datetime.fromtimestamp(window.start, UTC).date()
                )
                report.missing_digests.append(f"{folder}*_{trail}_*")
                stats["digests_missing"] += 1
            if current and not (before - {d.trail for d in current}):
                self._expect_from_digests(current, report, expected, listing_cache)
            else:
                # No digests (validation off), or a trail's digests stopped: list the folders.
                stats["pairs_listed"] += 1
                self._expect_from_listing(account, region, window, expected, listing_cache)
        for missing in report.missing_digests:
            report.warnings.append(
                f"no digest file in {window.label} where the previous window had one: {missing}"
            )
        stats["files_expected"] = len(expected)
        missed = self._missed(expected, report)
        self._reprocess(missed, report)
        self._athena(now, window, pairs, missed, report)
        report.delivery = self.processor.deliverer.deliver_pending()
        stats["pending_alerts_redelivered"] = report.delivery.delivered
        stats["alerts_pending"] = report.delivery.still_pending
        return report

    def _expect_from_digests(
        self,
        digests: list[Digest],
        report: ReconcileReport,
        expected: dict[str, str],
        cache: dict[Any, dict[str, ListedObject]],
    ) -> None:
        stats = report.stats
        spans: dict[tuple[str, str, date], tuple[int, int]] = {}
        wanted: list[tuple[tuple[str, str, date], str]] = []
        for listed_digest in digests:
            try:
                digest = self._read_digest(listed_digest)
            except ObjectError as exc:
                stats[f"digests_failed.{exc.reason}"] += 1
                report.warnings.append(f"unreadable digest {listed_digest.key}: {exc.reason}")
                continue
            if digest is None:
                stats["digests_gone"] += 1
                continue
            stats["digests_checked"] += 1
            for bucket, key in digest.log_files:
                c = classify_key(key)
                lk = c.log_key
                if (
                    bucket != self.bucket
                    or c.kind is not KeyKind.LOG
                    or lk is None
                    or (lk.account_id, lk.region) != (digest.account, digest.region)
                    or not key.startswith(self.layout.root)
                ):
                    # Digests are CloudTrail's, but a bucket is writable by others: a listed
                    # name that is not this trail's log object is counted, never followed.
                    stats["digest_entries_invalid"] += 1
                    continue
                t = int(lk.delivered_at.timestamp())
                folder = (lk.account_id, lk.region, lk.day)
                lo, hi = spans.get(folder, (t, t + MINUTE))
                spans[folder] = (min(lo, t), max(hi, t + MINUTE))
                wanted.append((folder, key))
        for folder, key in wanted:
            obj = self._listed(*folder, spans[folder], cache).get(key)
            expected[key] = obj.etag if obj else ""

    def _expect_from_listing(
        self,
        account: str,
        region: str,
        window: Window,
        expected: dict[str, str],
        cache: dict[Any, dict[str, ListedObject]],
    ) -> None:
        for day in days_between(window.start, window.end):
            span = (window.start, window.end)
            for key, obj in self._listed(account, region, day, span, cache).items():
                lk = classify_key(key).log_key
                if lk is not None and window.start <= lk.delivered_at.timestamp() < window.end:
                    expected[key] = obj.etag

    def _missed(self, expected: dict[str, str], report: ReconcileReport) -> list[ObjectRef]:
        missed: list[ObjectRef] = []
        ledger = self.processor.ledger
        # One BatchGetItem per 100 objects; any the store did not answer is asked on its own.
        known = ledger.get_many((self.bucket, k, e) for k, e in expected.items() if e)
        for key in sorted(expected, key=delivery_sort_key):
            etag = expected[key]
            if not etag:
                report.stats["files_absent"] += 1
                report.warnings.append(f"listed in a digest but not in the bucket: {key}")
                continue
            oid = (self.bucket, key, etag)
            entry = known[oid] if oid in known else ledger.get(*oid)
            if entry is None:
                missed.append(ObjectRef(self.bucket, key, etag))
        report.stats["files_missed"] = len(missed)
        return missed

    def _reprocess(self, missed: list[ObjectRef], report: ReconcileReport) -> None:
        stats = report.stats
        # Recorded in the ledger 25 objects a request as they are done (the rest at the end).
        self.processor.begin_batch(missed)
        try:
            for ref in missed:
                self._reprocess_one(ref, report)
        finally:
            unwritten = self.processor.end_batch().unwritten
            if unwritten:
                stats["ledger_unwritten"] += unwritten
                report.warnings.append(
                    f"{unwritten} reprocessed object(s) could not be recorded in the ledger: "
                    "the next run reads them again (their tuples are claimed: no second alert)"
                )

    def _reprocess_one(self, ref: ObjectRef, report: ReconcileReport) -> None:
        stats = report.stats
        outcome = self.processor.process(ref)
        report.outcomes.append(outcome)
        if outcome.status is ObjectStatus.PROCESSED or outcome.reason == "empty_object":
            stats["files_reprocessed"] += 1
            stats["alerts"] += len(outcome.alerts)
            if outcome.delivery is not None:
                stats["alerts_delivered"] += outcome.delivery.delivered
        elif outcome.status is ObjectStatus.DUPLICATE:
            stats["files_duplicate"] += 1  # the real-time path got there meanwhile
        elif outcome.status is ObjectStatus.SKIPPED and outcome.reason == "object_gone":
            stats["files_absent"] += 1
        else:
            stats[f"files_failed.{outcome.reason or outcome.status}"] += 1
            report.failed.append((ref.key, outcome.reason or outcome.status))

    def _athena(
        self,
        now: int,
        window: Window,
        pairs: list[tuple[str, str]],
        missed: list[ObjectRef],
        report: ReconcileReport,
    ) -> None:
        table, mode = self.table, self.settings.athena
        if table is None or mode == "off":
            return
        explicit = table.spec.partitioning == "explicit"
        if mode == "missed" and not missed and not explicit:
            return  # a complete hour: nothing to read, no query
        stats = report.stats
        before = table.bytes_scanned
        detected: dict[str, int] = {}  # object path -> rows
        try:
            if explicit:
                # Without projection, the partitions of today and tomorrow are added ahead of
                # their objects, for this job and for anyone querying the table (DDL: no scan).
                report.warnings.extend(table.ensure())
                today = datetime.fromtimestamp(now, UTC).date()
                table.add_partitions(pairs, [today, today + timedelta(days=1)])
            if mode == "missed":
                scopes = missed_scopes(
                    self.layout, [r.key for r in missed], self.settings.max_paths_per_query
                )
            else:
                scopes = window_scopes(self.layout, pairs, window.start, window.end)
            if scopes:
                report.warnings.extend(table.ensure())
            for scope in scopes:
                days = [datetime.strptime(d, "%Y/%m/%d").date() for d in scope.days]
                table.add_partitions([(a, r) for a in scope.accounts for r in scope.regions], days)
                self._detect_rows(table.tuples(scope, with_path=True), report, detected)
                stats["athena_queries"] += 1
        except (QueryFailed, SqlInputError) as exc:
            report.athena_error = str(exc)
        except Exception as exc:
            # Athena is the second line: the objects were already reprocessed directly. Its
            # failure is reported, and does not undo (or retry) what the first line did.
            report.athena_error = f"{type(exc).__name__}: {exc}"
        finally:
            stats["bytes_scanned"] += table.bytes_scanned - before
        if report.athena_error:
            stats["athena_failed"] += 1
            report.warnings.append(f"Athena: {report.athena_error}")
        self._settle_through_athena(detected, report)

    def _detect_rows(
        self, rows: Iterable[Row], report: ReconcileReport, detected: dict[str, int]
    ) -> None:
        """Run the query's rows through the detector, object by object: tuples already known
        (the objects just reprocessed) cost a lookup; anything else is claimed and alerted."""
        stats = report.stats
        by_path: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            stats["athena_rows"] += 1
            path = row.get(PATH_COLUMN) or ""
            by_path.setdefault(path, []).extend(row_records(row))
            detected[path] = detected.get(path, 0) + 1
        detector = self.processor.detector
        for path, records in sorted(by_path.items()):
            lk = classify_key(path.split("/", 3)[-1]).log_key
            account, region = (lk.account_id, lk.region) if lk else ("", "")
            result = detector.process(records, path, account, region)
            stats["athena_new_tuples"] += result.stats["new_tuples"]
            stats["alerts"] += len(result.alerts)
            stats["athena_alerts"] += len(result.alerts)

    def _settle_through_athena(self, detected: dict[str, int], report: ReconcileReport) -> None:
        """An object the function could not process (too large, say) but whose tuples Athena
        read is done: record it in the ledger as such, so that no later run tries it again."""
        still: list[tuple[str, str]] = []
        for key, reason in report.failed:
            rows = detected.get(self.layout.s3_uri(key), 0)
            outcome = next((o for o in report.outcomes if o.ref.key == key), None)
            if not rows or outcome is None or reason == "claims_failed":
                still.append((key, reason))
                continue
            lk = classify_key(key).log_key
            delivered = int(lk.delivered_at.timestamp()) if lk else 0
            self.processor.ledger.record(
                ProcessedObject(
                    self.bucket, key, outcome.ref.etag, rows, 0, delivered, outcome="athena"
                )
            )
            report.stats["files_detected_by_athena"] += 1
        report.failed = still
