"""The embedded default `Baseline` and `Outbox`: one SQLite file, safe to share between processes.

Claims run inside `BEGIN IMMEDIATE` transactions and use an upsert whose `WHERE` only lets a
claim through when the row is absent or expired, so two connections racing for the same new
tuple cannot both win. The alerts of a claim are written to the `outbox` table in the same
transaction, and so is the principal's burst window.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from ..domain.context import AGENT_PREFIX, NET_PREFIX
from ..domain.model import (
    Mark,
    MarkKind,
    PrincipalKey,
    Severity,
    TupleClaim,
    TupleKey,
    TupleState,
    WindowEntry,
)
from ..domain.window import decode_window, encode_window
from ..ports import MarkKey, PendingAlert, Stage
from .claims import group_by_principal

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tuples (
    account_id TEXT NOT NULL,
    principal TEXT NOT NULL,
    action TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, principal, action)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS windows (
    account_id TEXT NOT NULL,
    principal TEXT NOT NULL,
    entries TEXT NOT NULL,
    PRIMARY KEY (account_id, principal)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    alert_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,  -- pending | delivered | dead
    first_event_time INTEGER NOT NULL,
    severity TEXT NOT NULL,
    document BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    lease_until REAL NOT NULL DEFAULT 0  -- wall clock: who may send it now
);
CREATE INDEX IF NOT EXISTS outbox_by_status ON outbox (status, first_event_time);
CREATE TABLE IF NOT EXISTS marks (  -- lineage (domain/lineage.py); added without a version bump
    account_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    kind TEXT NOT NULL,  -- alerted | lineage
    creator TEXT NOT NULL,
    action TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    severity TEXT NOT NULL,
    event_time INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, subject, kind)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS principals (
    account_id TEXT NOT NULL,
    principal TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    PRIMARY KEY (account_id, principal)
) WITHOUT ROWID;
"""
_CHUNK = 300  # rows per statement: 900 parameters, under SQLite's oldest limit of 999
# Known tuples and principals' first sightings this process has read or written, so that the
# next object's lookups of the same ones cost no query (a replay looks up the same few thousand
# tuples in every object). Past this many entries the cache starts again, bounding its memory
# (~200 bytes an entry).
_CACHE_ENTRIES = 1_000_000


class StateFileError(Exception):
    """The state file cannot be used (not SQLite, or written by an incompatible version)."""


def _enable_wal(db: sqlite3.Connection, timeout_s: float) -> None:
    # Switching journal mode fails at once with "database is locked" (no busy handler) while
    # another connection is creating the same new file: retry, as the busy timeout would.
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def _connect_read_only(path: str, timeout_s: float) -> sqlite3.Connection:
    """Open for reading only. A WAL file needs its `-shm` beside it, which a reader who may not
    write the folder cannot create: then it is read as immutable (what the last writer left)."""
    uri = Path(path).absolute().as_uri()
    db = sqlite3.connect(f"{uri}?mode=ro", timeout=timeout_s, isolation_level=None, uri=True)
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:
        db.close()
        db = sqlite3.connect(
            f"{uri}?immutable=1", timeout=timeout_s, isolation_level=None, uri=True
        )
    return db


class SqliteBaseline:
    """The baseline in one SQLite file.

    What this process has read or written is cached: a tuple it knows to exist and when it
    expires, a principal's first sighting. Both only move one way (a tuple's `expires_at`
    forward, a first sighting back), so a cached value can be behind another process's write to
    the same file, never ahead of it in a way that alerts twice: a tuple the cache thinks
    expired is claimed, and the claim, atomic in the file, refuses it if it is not. What a
    concurrent writer can make stale is a principal's first sighting (one process seeing an
    earlier one than another had cached), that is when its learning ends.
    """

    def __init__(
        self, path: str | Path, timeout_s: float = 30.0, *, read_only: bool = False
    ) -> None:
        """Open (or create) the state file; `read_only` opens an existing one for reading
        only (`explain`), so a file the user may not write can still be read."""
        self.path = str(path)
        try:
            if read_only:
                self._db = _connect_read_only(self.path, timeout_s)
            else:
                self._db = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None)
                _enable_wal(self._db, timeout_s)
                self._db.execute("PRAGMA synchronous=NORMAL")
            tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}
            if (tables or read_only) and "meta" not in tables:
                # Another program's database: do not add our tables to it, nor fail mid-run.
                raise StateFileError(
                    f"{self.path}: an SQLite database, but not a cloudtrail-anomaly state file"
                )
            if not read_only:
                self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT value FROM meta WHERE name='schema_version'").fetchone()
            if row is None:
                if not read_only:
                    self._db.execute(
                        "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                        (str(SCHEMA_VERSION),),
                    )
            elif row[0] != str(SCHEMA_VERSION):
                raise StateFileError(
                    f"{self.path}: state schema version {row[0]}, this version reads {SCHEMA_VERSION}"
                )
        except sqlite3.DatabaseError as exc:
            raise StateFileError(f"{self.path}: not a usable state file ({exc})") from exc
        self.requests = 0
        self._known: dict[TupleKey, TupleState] = {}
        self._first_seen: dict[PrincipalKey, int] = {}

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _remember(self, key: TupleKey, state: TupleState) -> None:
        if len(self._known) >= _CACHE_ENTRIES:
            self._known.clear()
        self._known[key] = state

    def lookup(self, keys: Collection[TupleKey]) -> dict[TupleKey, TupleState]:
        self.requests += 1
        found: dict[TupleKey, TupleState] = {}
        known = self._known
        ordered = []
        for key in keys:
            state = known.get(key)
            if state is None:
                ordered.append(key)
            else:
                found[key] = state
        for i in range(0, len(ordered), _CHUNK):
            chunk = ordered[i : i + _CHUNK]
            rows = ",".join("(?,?,?)" for _ in chunk)
            params = [v for key in chunk for v in key]
            # The keys drive the join (CROSS JOIN keeps them outside), each a primary-key search:
            # `(…) IN (VALUES …)` made SQLite scan the whole table for every object.
            for a, p, act, first, last, exp in self._db.execute(
                f"WITH k(a, p, act) AS (VALUES {rows}) "  # noqa: S608 - only placeholders are interpolated
                "SELECT t.account_id, t.principal, t.action, t.first_seen, t.last_seen, "
                "t.expires_at FROM k CROSS JOIN tuples AS t "
                "ON t.account_id = k.a AND t.principal = k.p AND t.action = k.act",
                params,
            ):
                key, state = TupleKey(a, p, act), TupleState(first, last, exp)
                found[key] = state
                self._remember(key, state)
        return found

    def claim(self, claims: Sequence[TupleClaim], stage: Stage | None = None) -> set[TupleKey]:
        self.requests += 1
        claimed: set[TupleKey] = set()
        if not claims:
            return claimed
        with self._write() as db:
            for pkey, group in group_by_principal(claims).items():
                won: set[TupleKey] = set()
                for c in group:
                    cur = db.execute(
                        "INSERT INTO tuples VALUES (?,?,?,?,?,?) "
                        "ON CONFLICT (account_id, principal, action) DO UPDATE SET "
                        "first_seen=excluded.first_seen, last_seen=excluded.last_seen, "
                        "expires_at=excluded.expires_at "
                        "WHERE tuples.expires_at <= excluded.first_seen",
                        (*c.key, c.first_seen, c.last_seen, c.expires_at),
                    )
                    if cur.rowcount == 1:
                        won.add(c.key)
                        self._remember(c.key, TupleState(c.first_seen, c.last_seen, c.expires_at))
                    else:  # someone else's: read it again when next asked
                        self._known.pop(c.key, None)
                if won and stage is not None:
                    staged = stage(pkey, frozenset(won), self._window(db, pkey))
                    self._stage(db, staged.alerts)
                    self._put_marks(db, staged.marks)
                    if staged.window is not None:
                        db.execute(
                            "INSERT INTO windows VALUES (?,?,?) ON CONFLICT (account_id, principal) "
                            "DO UPDATE SET entries=excluded.entries",
                            (*pkey, encode_window(staged.window)),
                        )
                claimed |= won
        return claimed

    def refresh(self, updates: Sequence[TupleClaim]) -> None:
        self.requests += 1
        if not updates:
            return
        with self._write() as db:
            db.executemany(
                "UPDATE tuples SET last_seen=max(last_seen, ?), expires_at=max(expires_at, ?) "
                "WHERE account_id=? AND principal=? AND action=?",
                [(u.last_seen, u.expires_at, *u.key) for u in updates],
            )
        known = self._known
        for u in updates:
            state = known.get(u.key)
            if state is not None:
                known[u.key] = TupleState(
                    state.first_seen,
                    max(state.last_seen, u.last_seen),
                    max(state.expires_at, u.expires_at),
                )

    def observe_principals(self, seen: Mapping[PrincipalKey, int]) -> dict[PrincipalKey, int]:
        self.requests += 1
        result: dict[PrincipalKey, int] = {}
        cached = self._first_seen
        news: dict[PrincipalKey, int] = {}
        for key, t in seen.items():
            first = cached.get(key)
            if first is not None and first <= t:
                result[key] = first  # nothing earlier to store
            else:
                news[key] = t
        if not news:
            return result
        with self._write() as db:
            db.executemany(
                "INSERT INTO principals VALUES (?,?,?) ON CONFLICT (account_id, principal) "
                "DO UPDATE SET first_seen=excluded.first_seen "
                "WHERE excluded.first_seen < principals.first_seen",
                [(*k, t) for k, t in news.items()],
            )
            for key in news:
                row = db.execute(
                    "SELECT first_seen FROM principals WHERE account_id=? AND principal=?", key
                ).fetchone()
                result[key] = row[0]
        if len(cached) + len(news) > _CACHE_ENTRIES:
            cached.clear()
        for key in news:
            cached[key] = result[key]
        return result

    def marks(self, keys: Collection[MarkKey]) -> dict[MarkKey, Mark]:
        self.requests += 1
        found: dict[MarkKey, Mark] = {}
        for subject, kind in keys:
            row = self._db.execute(
                "SELECT creator, action, alert_id, severity, event_time, expires_at FROM marks "
                "WHERE account_id=? AND subject=? AND kind=?",
                (*subject, str(kind)),
            ).fetchone()
            if row is not None:
                creator, action, alert_id, severity, t, exp = row
                found[(subject, kind)] = Mark(
                    subject, MarkKind(kind), creator, action, alert_id, Severity(severity), t, exp
                )
        return found

    def put_marks(self, marks: Sequence[Mark]) -> None:
        self.requests += 1
        if marks:
            with self._write() as db:
                self._put_marks(db, marks)

    @staticmethod
    def _put_marks(db: sqlite3.Connection, marks: Sequence[Mark]) -> None:
        db.executemany(
            "INSERT OR REPLACE INTO marks VALUES (?,?,?,?,?,?,?,?,?)",
            [
                (
                    *m.subject,
                    str(m.kind),
                    m.creator,
                    m.action,
                    m.alert_id,
                    str(m.severity),
                    m.event_time,
                    m.expires_at,
                )
                for m in marks
            ],
        )

    @staticmethod
    def _window(db: sqlite3.Connection, key: PrincipalKey) -> list[WindowEntry]:
        row = db.execute(
            "SELECT entries FROM windows WHERE account_id=? AND principal=?", key
        ).fetchone()
        return decode_window(row[0]) if row else []

    # -- Outbox ----------------------------------------------------------------------------

    @staticmethod
    def _stage(db: sqlite3.Connection, alerts: Sequence[PendingAlert]) -> None:
        db.executemany(
            "INSERT OR IGNORE INTO outbox (alert_id, status, first_event_time, severity, document) "
            "VALUES (?, 'pending', ?, ?, ?)",
            [(a.alert_id, a.first_event_time, a.severity, a.document) for a in alerts],
        )

    def stage(self, alerts: Sequence[PendingAlert]) -> None:
        with self._write() as db:
            self._stage(db, alerts)

    def pending(self, limit: int = 500) -> list[PendingAlert]:
        rows = self._db.execute(
            "SELECT alert_id, first_event_time, severity, document, attempts, last_error "
            "FROM outbox WHERE status='pending' ORDER BY first_event_time, alert_id LIMIT ?",
            (limit,),
        ).fetchall()
        return [PendingAlert(i, t, sev, bytes(doc), n, err) for i, t, sev, doc, n, err in rows]

    def lease(self, alert_ids: Sequence[str], until: float, now: float) -> list[str]:
        taken: list[str] = []
        with self._write() as db:
            for i in alert_ids:
                cur = db.execute(
                    "UPDATE outbox SET lease_until=? "
                    "WHERE alert_id=? AND status='pending' AND lease_until <= ?",
                    (until, i, now),
                )
                if cur.rowcount == 1:
                    taken.append(i)
        return taken

    def mark_delivered(self, alert_ids: Sequence[str]) -> None:
        with self._write() as db:
            db.executemany(
                "UPDATE outbox SET status='delivered' WHERE alert_id=? AND status='pending'",
                [(i,) for i in alert_ids],
            )

    def record_failure(self, alert_ids: Sequence[str], reason: str) -> None:
        with self._write() as db:
            db.executemany(
                "UPDATE outbox SET attempts=attempts+1, last_error=?, lease_until=0 "
                "WHERE alert_id=? AND status='pending'",
                [(reason, i) for i in alert_ids],
            )

    def dead_letter(self, alert_id: str, reason: str) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE outbox SET status='dead', last_error=? WHERE alert_id=?",
                (reason, alert_id),
            )

    def dead_letters(self) -> list[tuple[PendingAlert, str]]:
        rows = self._db.execute(
            "SELECT alert_id, first_event_time, severity, document, attempts, last_error "
            "FROM outbox WHERE status='dead' ORDER BY first_event_time, alert_id"
        ).fetchall()
        return [
            (PendingAlert(i, t, sev, bytes(doc), n, err), err) for i, t, sev, doc, n, err in rows
        ]

    # Read-side helpers for the CLI (explain, summaries); not part of the Baseline protocol.
    def note(self, name: str, value: str) -> None:
        """Keep a fact about the runs that wrote this file (the learning period they used)."""
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, value))

    def noted(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE name=?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def counts(self) -> tuple[int, int]:
        tuples = self._db.execute("SELECT count(*) FROM tuples").fetchone()[0]
        principals = self._db.execute("SELECT count(*) FROM principals").fetchone()[0]
        return int(tuples), int(principals)

    def principals_matching(self, pattern: str) -> list[tuple[PrincipalKey, int]]:
        """Principals whose key equals `pattern`, or matches it as a glob."""
        op = "GLOB" if any(c in pattern for c in "*?[") else "="
        rows = self._db.execute(
            f"SELECT account_id, principal, first_seen FROM principals WHERE principal {op} ? "  # noqa: S608 - op is one of two literals
            "AND principal != '*' ORDER BY account_id, principal",
            (pattern,),
        ).fetchall()
        return [(PrincipalKey(a, p), int(t)) for a, p, t in rows]

    def account_first_seen(self, account_id: str) -> int | None:
        row = self._db.execute(
            "SELECT first_seen FROM principals WHERE account_id=? AND principal='*'", (account_id,)
        ).fetchone()
        return None if row is None else int(row[0])

    def tuples_of(
        self, key: PrincipalKey, *, contexts: bool = False
    ) -> list[tuple[str, TupleState]]:
        """The principal's actions and `@region:` pseudo-tuples (`explain`); with `contexts`,
        its `@net:` / `@agent:` ones too (domain/context.py)."""
        rows = self._db.execute(
            "SELECT action, first_seen, last_seen, expires_at FROM tuples "
            "WHERE account_id=? AND principal=? ORDER BY action",
            key,
        ).fetchall()
        return [
            (a, TupleState(int(f), int(last), int(e)))
            for a, f, last, e in rows
            if contexts or not a.startswith((NET_PREFIX, AGENT_PREFIX))
        ]

    def window_of(self, key: PrincipalKey) -> list[WindowEntry]:
        return self._window(self._db, key)
