"""The `Baseline` on one DynamoDB table (on-demand), shared by every Lambda container.

Key schema (string `pk`, string `sk`; TTL attribute `expires_at`, a Number of epoch seconds):

    pk = "P#<account>#<principal>"   sk = "A#<action>"    first_seen, last_seen, expires_at
    pk = "P#<account>#<principal>"   sk = "#first_seen"   first_seen
    pk = "P#<account>#<principal>"   sk = "#window"       entries (JSON), version, expires_at
    pk = "OUTBOX"                    sk = "P#<alert_id>"  pending alerts (see dynamodb_outbox.py)

A principal's tuples, first sighting and burst window share its partition, so one Query shows
everything known about a principal. All times are CloudTrail event times; `expires_at` is
`last_seen + forget_days`, so DynamoDB deletes a tuple once it has been unseen that long. It
deletes lazily (up to days late), so a stored item is "known" only while its `expires_at` is
after the event being judged: `lookup` returns expired items as they are, the detector treats
them as absent, and `claim`'s condition lets them be claimed again.

Cost model: lookups are `BatchGetItem`s of at most 100 keys. A principal's new tuples in one
object are claimed together, all or nothing, in one conditional `TransactWriteItems` (a lone new
tuple: one conditional `PutItem`): that is what makes two containers racing on the same object
send one alert, not two halves. A known tuple is written only when the detector refreshes it
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

import hashlib
import threading
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from ..baseline import Stage, group_by_principal, merge_window
from ..model import PrincipalKey, TupleClaim, TupleKey, TupleState
from ..outbox import PendingAlert
from ..policy import WindowEntry
from .dynamodb_batch import backoff_seconds, batch_get
from .dynamodb_outbox import pending_put

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

Item = dict[str, Any]

TTL_ATTRIBUTE = "expires_at"
FIRST_SEEN_SK = "#first_seen"
WINDOW_SK = "#window"
TRANSACT_LIMIT = 100  # DynamoDB's maximum items per TransactWriteItems
STAGE_RESERVE = 4  # transaction items kept free for a principal's staged alerts
_PK_LIMIT, _SK_LIMIT = 2048, 1024  # DynamoDB's key size limits, in bytes
_PROJECTION = "pk, sk, first_seen, last_seen, expires_at"
_CONDITION_FAILED = "ConditionalCheckFailedException"

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")
R = TypeVar("R")


class BaselineUnavailable(Exception):
    """DynamoDB did not answer in time (throttled beyond the retries): fail the object."""


def partition_key(account_id: str, principal: str) -> str:
    return _fit(f"P#{account_id}#{principal}", _PK_LIMIT)


def tuple_sort_key(action: str) -> str:
    return _fit(f"A#{action}", _SK_LIMIT)


def _fit(value: str, limit: int) -> str:
    """The value itself, or, past DynamoDB's key size limit, a prefix of it plus its digest."""
    raw = value.encode()
    if len(raw) <= limit:
        return value
    digest = hashlib.sha256(raw).hexdigest()
    return raw[: limit - 80].decode(errors="ignore") + "#sha256:" + digest


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _old_item(exc: ClientError) -> Item | None:
    """The stored item a failed condition returned (`ReturnValuesOnConditionCheckFailure`)."""
    item: Any = exc.response.get("Item")
    return item if isinstance(item, dict) and item else None


class LruCache(Generic[K, V]):
    """A bounded map that forgets the least recently used entries; safe across threads."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        if self.max_size <= 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.max_size:
                self._data.popitem(last=False)

    def pop(self, key: K) -> None:
        with self._lock:
            self._data.pop(key, None)


def _state(item: Item) -> TupleState:
    return TupleState(
        int(item["first_seen"]["N"]), int(item["last_seen"]["N"]), int(item["expires_at"]["N"])
    )


def _tuple_key(key: TupleKey) -> Item:
    """A tuple's item key (pk, sk)."""
    return {
        "pk": {"S": partition_key(key.account_id, key.principal)},
        "sk": {"S": tuple_sort_key(key.action)},
    }


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


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

    def _batch_get(self, keys: Iterable[tuple[str, str]]) -> list[Item]:
        result = batch_get(
            self.client,
            self.table,
            [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in keys],
            projection=_PROJECTION,
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
        the principal's alerts are written to the outbox in that same transaction."""
        # Room for the staged alerts (a new-action alert and a burst follow-up) in the last
        # transaction of a principal with more new tuples than one transaction holds.
        size = TRANSACT_LIMIT - (STAGE_RESERVE if stage is not None else 0)
        groups: list[tuple[PrincipalKey, list[TupleClaim], bool]] = []
        for pkey, group in group_by_principal(claims).items():
            chunks = [group[i : i + size] for i in range(0, len(group), size)]
            groups.extend((pkey, chunk, n == len(chunks) - 1) for n, chunk in enumerate(chunks))
        won_so_far: dict[PrincipalKey, set[TupleKey]] = {}

        def run(item: tuple[PrincipalKey, list[TupleClaim], bool]) -> set[TupleKey]:
            pkey, chunk, last = item
            if stage is None or not last:
                won = self._claim_group(chunk, None)
            else:
                earlier = frozenset(won_so_far.get(pkey, ()))
                won = self._claim_group(chunk, lambda keys: stage(pkey, earlier | keys))
            won_so_far.setdefault(pkey, set()).update(won)
            return won

        # A principal's chunks must run in order (the last one stages), so split principals
        # across threads, not chunks.
        by_principal: dict[PrincipalKey, list[tuple[PrincipalKey, list[TupleClaim], bool]]] = {}
        for g in groups:
            by_principal.setdefault(g[0], []).append(g)
        claimed: set[TupleKey] = set()
        for won_sets in self._each(lambda gs: [run(g) for g in gs], list(by_principal.values())):
            for won in won_sets:
                claimed |= won
        return claimed

    def _claim_group(
        self,
        group: list[TupleClaim],
        stage: Callable[[frozenset[TupleKey]], Sequence[PendingAlert]] | None,
    ) -> set[TupleKey]:
        if len(group) == 1 and stage is None:  # a plain conditional put costs half a transaction
            return {group[0].key} if self._claim_one(group[0]) else set()

        def items(pending: list[TupleClaim]) -> list[Any]:
            alerts = stage(frozenset(c.key for c in pending)) if stage is not None else ()
            return [{"Put": self._claim_put(c)} for c in pending] + [
                {"Put": pending_put(self.table, a)} for a in alerts
            ]

        # Keys held by others are dropped (and their state remembered): the rest are claimed,
        # still all or nothing.
        pending, failure = self._transact(group, items, lambda c, r: self._lost(c.key, r))
        if failure is not None:
            for _ in pending:
                self._error("claim", failure)
            return set()
        for c in pending:
            self._tuples.put(c.key, TupleState(c.first_seen, c.last_seen, c.expires_at))
        return {c.key for c in pending}

    def _transact(
        self,
        pending: list[TupleClaim],
        items: Callable[[list[TupleClaim]], list[Any]],
        condition_failed: Callable[[TupleClaim, Any], None],
    ) -> tuple[list[TupleClaim], Exception | None]:
        """One conditional `TransactWriteItems` of `items(pending)`, until it commits. A claim
        whose condition failed goes to `condition_failed` with its cancellation reason (which
        holds the stored item) and the others go again; a conflict with another transaction,
        or throttling, goes again after a pause. Returns what was committed (nothing, when
        every condition failed) and None, or what was left and the error that ended it."""
        failure: Exception = TimeoutError("transaction kept conflicting")
        for attempt in range(1, self.max_batch_attempts + 1):
            try:
                self._count("TransactWriteItems")
                self.client.transact_write_items(
                    TransactItems=items(pending),
                    # botocore's retry of a transaction that committed but timed out must not
                    # come back "condition failed"; unique per call, so rivals never share one.
                    ClientRequestToken=uuid.uuid4().hex,
                )
            except ClientError as exc:
                if error_code(exc) != "TransactionCanceledException":
                    return pending, exc
                reasons: list[Any] = list(exc.response.get("CancellationReasons") or [])
                failed = [
                    (c, r)
                    for c, r in zip(pending, reasons, strict=False)
                    if r.get("Code") == "ConditionalCheckFailed"
                ]
                if not failed:  # a conflicting transaction or throttling: again after a pause
                    self._sleep(backoff_seconds(attempt))
                    continue
                for c, r in failed:
                    condition_failed(c, r)
                done = {c.key for c, _ in failed}
                pending = [c for c in pending if c.key not in done]
                if not pending:
                    return [], None
                continue
            except BotoCoreError as exc:
                return pending, exc
            return pending, None
        return pending, failure

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
                **_tuple_key(c.key),
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
            if error_code(exc) != _CONDITION_FAILED:
                self._error("claim", exc)
                return False
            # Someone else holds it: remember their state, so we do not try again.
            old = _old_item(exc)
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
            self._write_held()  # and go on holding

    def hold_refreshes(self) -> None:
        self._holding = True

    def flush(self) -> None:
        self._holding = False
        self._write_held()

    def _write_held(self) -> None:
        with self._lock:
            held, self._deferred = list(self._deferred.values()), {}
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
            "Key": _tuple_key(u.key),
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
                if error_code(exc) != _CONDITION_FAILED:
                    self._error("refresh", exc)
                    self._tuples.pop(u.key)  # not written: read it again next time
                    return
                old = _old_item(exc)
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
            old = _old_item(exc) if error_code(exc) == _CONDITION_FAILED else None
            if old and "first_seen" in old:
                return min(int(old["first_seen"]["N"]), t)
            raise
        return int(resp["Attributes"]["first_seen"]["N"])

    def append_window(
        self, key: PrincipalKey, entries: Sequence[WindowEntry], window_s: int
    ) -> tuple[list[WindowEntry], list[WindowEntry]]:
        """Read-merge-write of the principal's window item, guarded by its version number, so
        concurrent writers never lose each other's entries."""
        db_key: Item = {
            "pk": {"S": partition_key(key.account_id, key.principal)},
            "sk": {"S": WINDOW_SK},
        }
        for attempt in range(1, 9):
            try:
                self._count("GetItem")
                item = self.client.get_item(
                    TableName=self.table, Key=db_key, ConsistentRead=True
                ).get("Item")
                before = (
                    [WindowEntry(*e) for e in orjson.loads(item["entries"]["S"])] if item else []
                )
                version = int(item["version"]["N"]) if item else 0
                after = merge_window(before, entries, window_s)
                newest = after[-1].event_time if after else 0
                self._count("PutItem")
                self.client.put_item(
                    TableName=self.table,
                    Item={
                        **db_key,
                        "entries": {"S": orjson.dumps([list(e) for e in after]).decode()},
                        "version": _n(version + 1),
                        TTL_ATTRIBUTE: _n(newest + window_s),
                    },
                    ConditionExpression="attribute_not_exists(pk) OR version = :v",
                    ExpressionAttributeValues={":v": _n(version)},
                )
            except ClientError as exc:
                if error_code(exc) != _CONDITION_FAILED:
                    self._error("append_window", exc)
                    break
                self._sleep(backoff_seconds(attempt))
                continue
            except BotoCoreError as exc:
                self._error("append_window", exc)
                break
            return before, after
        else:
            self._error("append_window", TimeoutError("lost 8 races"))
        # Degrade to this object's entries alone: a retry could not redo the window anyway, as
        # its tuples are claimed by now.
        return [], merge_window([], entries, window_s)


def create_table(client: DynamoDBClient, table: str) -> None:
    """Create a table with the baseline's key schema, on-demand, with TTL on `expires_at`: for
    tests, the benchmark and local runs (deployments declare the same in their template)."""
    client.create_table(
        TableName=table,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=table)
    client.update_time_to_live(
        TableName=table,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )
