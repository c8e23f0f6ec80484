"""The `Baseline` on one DynamoDB table (on-demand), shared by every Lambda container.

Key schema (string `pk`, string `sk`; TTL attribute `expires_at`, a Number of epoch seconds):

    pk = "P#<account>#<principal>"   sk = "A#<action>"    first_seen, last_seen, expires_at
    pk = "P#<account>#<principal>"   sk = "#first_seen"   first_seen
    pk = "P#<account>#<principal>"   sk = "#window"       entries (JSON), version, expires_at
    pk = "P#<account>#<subject>"     sk = "#mark#<kind>"  creator, via, alert_id, severity,
                                                          event_time, expires_at (lineage)
    pk = "OUTBOX"                    sk = "P#<alert_id>"  pending alerts (see outbox.py)

A principal's tuples, first sighting and burst window share its partition, so one Query shows
everything known about a principal. All times are CloudTrail event times; `expires_at` is
`last_seen + forget_days`, so DynamoDB deletes a tuple once it has been unseen that long. It
deletes lazily (up to days late), so a stored item is "known" only while its `expires_at` is
after the event being judged: `lookup` returns expired items as they are, the detector treats
them as absent, and `claim`'s condition lets them be claimed again.

Cost model: lookups are `BatchGetItem`s of at most 100 keys. A principal's new tuples in one
object are claimed together, all or nothing, in one conditional `TransactWriteItems` (a lone new
tuple without alerts: one conditional `PutItem`): that is what makes two containers racing on
the same object send one alert, not two halves. With alerting on, the same transaction writes
the principal's pending alerts and its burst window (read for all the object's principals in
one consistent `BatchGetItem`, written only over the version read), so a transaction that did
not commit, or ran twice, left nothing behind. A known tuple is written only when the detector refreshes it
(every `refresh_after_days`): the refreshes of one call go up to 100 in one conditional
`TransactWriteItems` (a lone one: an `UpdateItem`), each item costing two write units instead
of one, in one request instead of a hundred; between `hold_refreshes` and `flush` (one SQS
batch), they are held, so that the whole batch's go together. Each container keeps an LRU cache of the
tuple states and principal sightings it has read or written, so a warm container makes no
request at all for tuples it already knows. The cache is always safe: stored states only move
forward, so a cached state can only make the detector *try* a claim or a refresh that the
table's conditions then reject; it can never make it skip an alert.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from ...domain.model import (
    Mark,
    MarkKind,
    PrincipalKey,
    Severity,
    TupleClaim,
    TupleKey,
    TupleState,
    WindowEntry,
)
from ...domain.window import decode_window, encode_window
from ...ports import MAX_STAGED_MARKS, MarkKey, Stage, Staged
from ..claims import claimable, group_by_principal
from .batch import batch_get
from .cache import LruCache
from .keys import (
    FIRST_SEEN_SK,
    MARK_SK,
    TTL_ATTRIBUTE,
    WINDOW_SK,
    partition_key,
    tuple_key,
    tuple_sort_key,
)
from .outbox import pending_put
from .transact import CONDITION_FAILED, TRANSACT_LIMIT, error_code, old_item, transact

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

Item = dict[str, Any]

# Transaction items kept free for a principal's alerts and burst window, and its lineage marks.
STAGE_RESERVE = 4 + MAX_STAGED_MARKS
_PROJECTION = "pk, sk, first_seen, last_seen, expires_at"

T = TypeVar("T")
R = TypeVar("R")


class BaselineUnavailable(Exception):
    """DynamoDB did not answer in time (throttled beyond the retries): fail the object."""


def _state(item: Item) -> TupleState:
    return TupleState(
        int(item["first_seen"]["N"]), int(item["last_seen"]["N"]), int(item["expires_at"]["N"])
    )


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


class _Judge:
    """A principal's `Stage` for one transaction: the keys it commits, plus those the later
    transactions of the same claim are about to (`later`), over the window as last read."""

    def __init__(
        self, stage: Stage, pkey: PrincipalKey, later: frozenset[TupleKey], window: _Window
    ) -> None:
        self.stage, self.pkey, self.later, self.window = stage, pkey, later, window

    def __call__(self, keys: frozenset[TupleKey]) -> Staged:
        return self.stage(self.pkey, keys | self.later, tuple(self.window.entries))


class _Window:
    """A principal's burst window as last read, and its version (0: no item)."""

    def __init__(self, pkey: PrincipalKey) -> None:
        self.ids = (partition_key(pkey.account_id, pkey.principal), WINDOW_SK)
        self.key: Item = {"pk": {"S": self.ids[0]}, "sk": {"S": self.ids[1]}}
        self.entries: list[WindowEntry] = []
        self.version = 0

    def load(self, item: Item | None) -> None:
        if item and "version" in item:
            self.entries = decode_window(item["entries"]["S"])
            self.version = int(item["version"]["N"])


class DynamoDbBaseline:
    """A `Baseline` on a DynamoDB table with the key schema in the module docstring."""

    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        *,
        cache_size: int = 200_000,
        write_concurrency: int = 8,
        max_batch_attempts: int = 8,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self._holding = False  # between hold_refreshes() and flush()
        self._deferred: dict[TupleKey, TupleClaim] = {}
        self.table = table
        self.write_concurrency = write_concurrency
        self.max_batch_attempts = max_batch_attempts
        self._sleep = sleep
        self._tuples: LruCache[TupleKey, TupleState] = LruCache(cache_size)
        self._principals: LruCache[PrincipalKey, int] = LruCache(cache_size // 10)
        self._lock = threading.Lock()
        self._failed_claims = 0
        self.errors: Counter[str] = Counter()  # writes that failed after all retries
        self.request_counts: Counter[str] = Counter()
        self.cache_hits = 0

    @property
    def requests(self) -> int:
        """DynamoDB API calls made so far (botocore's own retries not counted)."""
        return sum(self.request_counts.values())

    def take_failed_claims(self) -> int:
        """Claims that failed after all retries (not lost to a rival) since the last call. The
        caller fails the object so that it is retried: such a tuple was neither claimed nor
        alerted, so the retry claims and alerts it, while the tuples that were claimed stay
        claimed and do not alert twice."""
        with self._lock:
            failed, self._failed_claims = self._failed_claims, 0
        return failed

    def _count(self, operation: str) -> None:
        with self._lock:
            self.request_counts[operation] += 1

    def _error(self, operation: str, exc: Exception) -> None:
        # Counted by error code only: keys name accounts and principals, and counts are logged.
        detail = error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
        with self._lock:
            self.errors[f"{operation}.{detail}"] += 1
            if operation == "claim":
                self._failed_claims += 1

    def _each(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """`fn` over `items`, on a few threads when there are several (writes are one request
        per item, and a cold container can have hundreds of them in one object)."""
        if len(items) <= 1 or self.write_concurrency <= 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(min(self.write_concurrency, len(items))) as pool:
            return list(pool.map(fn, items))

    def _batch_get(
        self,
        keys: Iterable[tuple[str, str]],
        *,
        consistent: bool = False,
        projection: str = _PROJECTION,
    ) -> list[Item]:
        result = batch_get(
            self.client,
            self.table,
            [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in keys],
            projection=projection,
            consistent=consistent,
            max_attempts=self.max_batch_attempts,
            sleep=self._sleep,
            on_call=lambda: self._count("BatchGetItem"),
        )
        if result.unprocessed:
            raise BaselineUnavailable(
                f"BatchGetItem on {self.table}: {len(result.unprocessed)} keys still "
                f"unprocessed after {self.max_batch_attempts} attempts (throttled)"
            )
        return result.items

    def lookup(self, keys: Collection[TupleKey]) -> dict[TupleKey, TupleState]:
        found: dict[TupleKey, TupleState] = {}
        missing: dict[tuple[str, str], TupleKey] = {}
        for key in keys:
            state = self._tuples.get(key)
            if state is not None:
                found[key] = state
            else:
                missing[
                    (partition_key(key.account_id, key.principal), tuple_sort_key(key.action))
                ] = key
        with self._lock:
            self.cache_hits += len(found)
        for item in self._batch_get(missing):
            key = missing[(item["pk"]["S"], item["sk"]["S"])]
            found[key] = state = _state(item)
            self._tuples.put(key, state)
        return found

    def claim(self, claims: Sequence[TupleClaim], stage: Stage | None = None) -> set[TupleKey]:
        """Claim per principal, all or nothing: a principal's new tuples go in one transaction,
        so when the same object is processed twice at once, one invocation claims them all and
        sends one alert, instead of the two splitting the tuples into two alerts. With `stage`,
        the principal's alerts and burst window are written in that same transaction.

        A principal with more new tuples than one transaction holds is claimed in several;
        the first one that commits carries the alert, judged over every tuple the principal is
        about to claim (the later transactions' too), so that whatever happens to those later
        transactions, no claimed tuple goes unreported: if one fails, the object's retry claims
        what is left and reports it again (a duplicate, never a loss). Its tuples are read
        again first (consistently), so that the alert leaves out those already someone's."""
        # Room for the staged alerts (a new-action alert and a burst follow-up) and the window.
        size = TRANSACT_LIMIT - (STAGE_RESERVE if stage is not None else 0)
        groups = group_by_principal(claims)
        windows = self._read_windows(groups) if stage is not None else {}

        def run(pkey: PrincipalKey) -> set[TupleKey]:
            group = groups[pkey]
            if stage is not None and len(group) > size:
                group = self._still_claimable(group)
            chunks = [group[i : i + size] for i in range(0, len(group), size)]
            won: set[TupleKey] = set()
            staged = stage is None
            for n, chunk in enumerate(chunks):
                if staged:
                    won |= self._claim_group(chunk)[0]
                    continue
                assert stage is not None
                later = frozenset(c.key for rest in chunks[n + 1 :] for c in rest)
                judge = _Judge(stage, pkey, later, windows[pkey])
                got, failed = self._claim_group(chunk, judge, windows[pkey])
                if failed:
                    # Nothing of this principal is claimed: its object is retried as a whole.
                    break
                won |= got
                staged = bool(got)  # else a rival holds the whole chunk: the next one stages
            return won

        # A principal's chunks run in order (the first that commits stages), so split
        # principals across threads, not chunks.
        claimed: set[TupleKey] = set()
        for won in self._each(run, list(groups)):
            claimed |= won
        return claimed

    def _claim_group(
        self,
        group: list[TupleClaim],
        judge: Callable[[frozenset[TupleKey]], Staged] | None = None,
        window: _Window | None = None,
    ) -> tuple[set[TupleKey], bool]:
        """Claim `group` in one transaction, with what `judge` stages for the keys still
        pending. Returns the keys claimed, and whether the claim failed (an error or too many
        conflicts, not a rival: then nothing was claimed)."""
        if len(group) == 1 and judge is None:  # a plain conditional put costs half a transaction
            return ({group[0].key} if self._claim_one(group[0]) else set()), False

        def items(pending: list[TupleClaim]) -> list[Any]:
            writes: list[Any] = [{"Put": self._claim_put(c)} for c in pending]
            if judge is None:
                return writes
            staged = judge(frozenset(c.key for c in pending))
            writes += [{"Put": pending_put(self.table, a)} for a in staged.alerts]
            if staged.window is not None and window is not None:
                writes.append({"Put": self._window_put(window, staged)})
            # Unconditional: a mark replaces the stored one (and never fails the claim).
            writes += [{"Put": self._mark_put(m)} for m in staged.marks[:MAX_STAGED_MARKS]]
            return writes

        def moved(reason: Any) -> None:
            """Another writer changed the window since it was read: stage again with theirs."""
            if window is not None:
                window.load(reason.get("Item"))

        # Keys held by others are dropped (and their state remembered): the rest are claimed,
        # still all or nothing.
        pending, failure = self._transact(
            group, items, lambda c, r: self._lost(c.key, r), other_failed=moved
        )
        if failure is not None:
            for _ in pending:
                self._error("claim", failure)
            return set(), True
        for c in pending:
            self._tuples.put(c.key, TupleState(c.first_seen, c.last_seen, c.expires_at))
        return {c.key for c in pending}, False

    def _still_claimable(self, group: list[TupleClaim]) -> list[TupleClaim]:
        """The claims the table would let through now (a consistent read): the first
        transaction of a principal claimed in several reports all of them, so it must not
        report tuples that are already someone's."""
        wanted = {
            (partition_key(c.key.account_id, c.key.principal), tuple_sort_key(c.key.action)): c
            for c in group
        }
        held: set[TupleKey] = set()
        for item in self._batch_get(wanted, consistent=True):
            c = wanted[(item["pk"]["S"], item["sk"]["S"])]
            state = _state(item)
            self._tuples.put(c.key, state)
            if not claimable(state, c):
                held.add(c.key)
        return [c for c in group if c.key not in held]

    def _read_windows(self, groups: Collection[PrincipalKey]) -> dict[PrincipalKey, _Window]:
        """The burst windows of these principals, read consistently (one `BatchGetItem` per
        100): a claim's transaction writes its window only if no one changed it since."""
        windows = {pkey: _Window(pkey) for pkey in groups}
        by_key = {w.ids: w for w in windows.values()}
        for item in self._batch_get(by_key, consistent=True, projection="pk, sk, entries, version"):
            by_key[(item["pk"]["S"], item["sk"]["S"])].load(item)
        return windows

    def _mark_put(self, mark: Mark) -> Any:
        return {
            "TableName": self.table,
            "Item": {
                "pk": {"S": partition_key(mark.subject.account_id, mark.subject.principal)},
                "sk": {"S": MARK_SK + mark.kind},
                "creator": {"S": mark.creator},
                "via": {"S": mark.action},  # "action" is a reserved word in expressions
                "alert_id": {"S": mark.alert_id},
                "severity": {"S": str(mark.severity)},
                "event_time": _n(mark.event_time),
                TTL_ATTRIBUTE: _n(mark.expires_at),
            },
        }

    def marks(self, keys: Collection[MarkKey]) -> dict[MarkKey, Mark]:
        wanted = {
            (partition_key(subject.account_id, subject.principal), MARK_SK + kind): (subject, kind)
            for subject, kind in keys
        }
        if not wanted:
            return {}
        result = batch_get(
            self.client,
            self.table,
            [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in wanted],
            consistent=False,
            max_attempts=self.max_batch_attempts,
            sleep=self._sleep,
            on_call=lambda: self._count("BatchGetItem"),
        )
        if result.unprocessed:
            raise BaselineUnavailable(f"BatchGetItem on {self.table}: marks unprocessed")
        found: dict[MarkKey, Mark] = {}
        for item in result.items:
            subject, kind = wanted[(item["pk"]["S"], item["sk"]["S"])]
            found[(subject, kind)] = Mark(
                subject,
                MarkKind(kind),
                item["creator"]["S"],
                item["via"]["S"],
                item["alert_id"]["S"],
                Severity(item["severity"]["S"]),
                int(item["event_time"]["N"]),
                int(item[TTL_ATTRIBUTE]["N"]),
            )
        return found

    def put_marks(self, marks: Sequence[Mark]) -> None:
        def put(mark: Mark) -> None:
            self._count("PutItem")
            self.client.put_item(**self._mark_put(mark))

        self._each(put, list(marks))

    def _window_put(self, window: _Window, staged: Staged) -> Any:
        assert staged.window is not None
        return {
            "TableName": self.table,
            "Item": {
                **window.key,
                "entries": {"S": encode_window(staged.window)},
                "version": _n(window.version + 1),
                TTL_ATTRIBUTE: _n(staged.window_expires_at),
            },
            # Written only over the window the judgement saw; else it is judged again.
            "ConditionExpression": "attribute_not_exists(pk) OR version = :v",
            "ExpressionAttributeValues": {":v": _n(window.version)},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    def _transact(
        self,
        pending: list[TupleClaim],
        items: Callable[[list[TupleClaim]], list[Any]],
        condition_failed: Callable[[TupleClaim, Any], None],
        other_failed: Callable[[Any], None] | None = None,
    ) -> tuple[list[TupleClaim], Exception | None]:
        """`transact.transact` on this table's client, with its retries and request counts."""
        return transact(
            self.client,
            pending,
            items,
            condition_failed,
            other_failed,
            max_attempts=self.max_batch_attempts,
            sleep=self._sleep,
            on_call=lambda: self._count("TransactWriteItems"),
        )

    def _lost(self, key: TupleKey, reason: Any) -> None:
        """Remember the state that beat our claim (returned with the failed condition)."""
        old = reason.get("Item")
        if old and "last_seen" in old:
            self._tuples.put(key, _state(old))
        else:
            self._tuples.pop(key)

    def _claim_put(self, c: TupleClaim) -> Any:
        return {
            "TableName": self.table,
            "Item": {
                **tuple_key(c.key),
                "first_seen": _n(c.first_seen),
                "last_seen": _n(c.last_seen),
                TTL_ATTRIBUTE: _n(c.expires_at),
            },
            "ConditionExpression": "attribute_not_exists(pk) OR expires_at <= :first_seen",
            "ExpressionAttributeValues": {":first_seen": _n(c.first_seen)},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    def _claim_one(self, c: TupleClaim) -> bool:
        key = c.key
        try:
            self._count("PutItem")
            self.client.put_item(**self._claim_put(c))
        except ClientError as exc:
            if error_code(exc) != CONDITION_FAILED:
                self._error("claim", exc)
                return False
            # Someone else holds it: remember their state, so we do not try again.
            old = old_item(exc)
            if old and "last_seen" in old:
                self._tuples.put(key, _state(old))
            else:
                self._tuples.pop(key)
            return False
        except BotoCoreError as exc:
            self._error("claim", exc)
            return False
        self._tuples.put(key, TupleState(c.first_seen, c.last_seen, c.expires_at))
        return True

    def refresh(self, updates: Sequence[TupleClaim]) -> None:
        if not self._holding:
            self._write_refreshes(list(updates))
            return
        # Held until `flush` (or a full transaction's worth). The cache takes the new state at
        # once, so later objects of the batch do not ask again; a refresh that cannot be
        # written drops its tuple from the cache, so that it is read and refreshed again.
        with self._lock:
            for u in updates:
                held = self._deferred.get(u.key)
                if held is not None:
                    u = TupleClaim(
                        u.key,
                        held.first_seen,
                        max(held.last_seen, u.last_seen),
                        max(held.expires_at, u.expires_at),
                    )
                self._deferred[u.key] = u
                self._tuples.put(u.key, TupleState(u.first_seen, u.last_seen, u.expires_at))
            full = len(self._deferred) >= TRANSACT_LIMIT
        if full:
            self._write_held(whole_requests=True)  # and go on holding

    def hold_refreshes(self) -> None:
        self._holding = True

    def flush(self) -> None:
        self._holding = False
        self._write_held()

    def _write_held(self, *, whole_requests: bool = False) -> None:
        """Write the refreshes held; with `whole_requests`, only full transactions' worth, the
        rest held on (writing them too would send a part-full request every time an object
        tips the count over 100)."""
        with self._lock:
            held = list(self._deferred.values())
            if whole_requests:
                held = held[: len(held) - len(held) % TRANSACT_LIMIT]
            for u in held:
                del self._deferred[u.key]
        self._write_refreshes(held)

    @property
    def deferred(self) -> int:
        """Refreshes held for the next `flush`."""
        return len(self._deferred)

    def _write_refreshes(self, updates: list[TupleClaim]) -> None:
        # A refresh alone is a plain update (half a transaction's write units).
        chunks = [updates[i : i + TRANSACT_LIMIT] for i in range(0, len(updates), TRANSACT_LIMIT)]
        self._each(
            lambda c: self._refresh_group(c) if len(c) > 1 else self._refresh_one(c[0]), chunks
        )

    def _refresh_update(self, u: TupleClaim) -> Item:
        return {
            "TableName": self.table,
            "Key": tuple_key(u.key),
            "UpdateExpression": "SET last_seen = :last, expires_at = :exp",
            "ConditionExpression": (
                "attribute_exists(pk) AND last_seen <= :last AND expires_at <= :exp"
            ),
            "ExpressionAttributeValues": {":last": _n(u.last_seen), ":exp": _n(u.expires_at)},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    def _refresh_group(self, group: list[TupleClaim]) -> None:
        """Refresh up to 100 tuples in one transaction. The common case: every condition holds
        (the states only move forward). A tuple whose condition failed (refreshed further by
        another container, or gone) is settled alone by `_refresh_one`, and the rest go again;
        a conflict with another transaction or throttling: again after a pause."""
        pending, failure = self._transact(
            group,
            lambda us: [{"Update": self._refresh_update(u)} for u in us],
            lambda u, _reason: self._refresh_one(u),
        )
        if failure is not None:
            for u in pending:
                self._error("refresh", failure)
                self._tuples.pop(u.key)
            return
        for u in pending:
            self._tuples.put(u.key, TupleState(u.first_seen, u.last_seen, u.expires_at))

    def _refresh_one(self, u: TupleClaim) -> None:
        """Move `last_seen` and `expires_at` forward. The common case is one conditional update
        (both move forward); otherwise read the stored values from the failed condition and
        write the per-attribute maximum, guarded by the values read (optimistic locking)."""
        request = self._refresh_update(u)
        for _ in range(4):
            try:
                self._count("UpdateItem")
                resp = self.client.update_item(**request, ReturnValues="ALL_NEW")
            except ClientError as exc:
                if error_code(exc) != CONDITION_FAILED:
                    self._error("refresh", exc)
                    self._tuples.pop(u.key)  # not written: read it again next time
                    return
                old = old_item(exc)
                if not old or "last_seen" not in old:
                    self._tuples.pop(u.key)  # gone (or never there): nothing to refresh
                    return
                state = _state(old)
                last, exp = max(state.last_seen, u.last_seen), max(state.expires_at, u.expires_at)
                if (last, exp) == (state.last_seen, state.expires_at):
                    self._tuples.put(u.key, state)
                    return
                request = {
                    **request,
                    "ConditionExpression": "last_seen = :old_last AND expires_at = :old_exp",
                    "ExpressionAttributeValues": {
                        ":last": _n(last),
                        ":exp": _n(exp),
                        ":old_last": _n(state.last_seen),
                        ":old_exp": _n(state.expires_at),
                    },
                }
                continue
            except BotoCoreError as exc:
                self._error("refresh", exc)
                self._tuples.pop(u.key)
                return
            self._tuples.put(u.key, _state(resp["Attributes"]))
            return
        # Four lost races in a row: the tuple is being refreshed by others, which is the point.
        self._tuples.pop(u.key)

    def observe_principals(self, seen: Mapping[PrincipalKey, int]) -> dict[PrincipalKey, int]:
        result: dict[PrincipalKey, int] = {}
        need: dict[tuple[str, str], PrincipalKey] = {}
        for key, t in seen.items():
            cached = self._principals.get(key)
            if cached is not None and cached <= t:
                result[key] = cached
            else:
                need[(partition_key(key.account_id, key.principal), FIRST_SEEN_SK)] = key
        stored = {
            need[(i["pk"]["S"], i["sk"]["S"])]: int(i["first_seen"]["N"])
            for i in self._batch_get(need)
        }
        to_write: list[PrincipalKey] = []
        for key in need.values():
            old = stored.get(key)
            if old is not None and old <= seen[key]:
                result[key] = old
                self._principals.put(key, old)
            else:
                to_write.append(key)
        for key, first in zip(
            to_write, self._each(lambda k: self._observe_one(k, seen[k]), to_write), strict=True
        ):
            result[key] = first
            self._principals.put(key, first)
        return result

    def _observe_one(self, key: PrincipalKey, t: int) -> int:
        try:
            self._count("UpdateItem")
            resp = self.client.update_item(
                TableName=self.table,
                Key={
                    "pk": {"S": partition_key(key.account_id, key.principal)},
                    "sk": {"S": FIRST_SEEN_SK},
                },
                UpdateExpression="SET first_seen = :t",
                ConditionExpression="attribute_not_exists(pk) OR first_seen > :t",
                ExpressionAttributeValues={":t": _n(t)},
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            old = old_item(exc) if error_code(exc) == CONDITION_FAILED else None
            if old and "first_seen" in old:
                return min(int(old["first_seen"]["N"]), t)
            raise
        return int(resp["Attributes"]["first_seen"]["N"])
