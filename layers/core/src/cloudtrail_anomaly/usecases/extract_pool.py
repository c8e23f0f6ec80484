"""Read, inflate, decode and extract local log objects in worker processes (`--jobs N`).

Only the part of detection that touches every record runs in the workers: classifying the file
name, reading it (capped), decoding it and `Extractor.extract`. What they send back is small, an
`Extraction` of the object's distinct tuples, and the one process that owns the baseline takes
the results in delivery order (`Detector.process_extracted`), so claims, policy and alerts are
those of a run in one process. Memory stays bounded: a worker holds one object at a time, and at
most `_CHUNKS_PER_WORKER` chunks of objects are in flight per worker.

Results travel as msgpack (msgspec), not pickle: decoding them is the claiming process's cost
per object, and pickle's rebuilding of objects costs about twice as much; each first event is
sent once (`_WireExtraction`), not once per tuple that shares it.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter, deque
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager, suppress
from multiprocessing import get_context
from pathlib import Path

import msgspec

from ..domain.detector import DetectionSettings
from ..domain.extract import Extraction, Extractor
from ..domain.model import Event, Grant, Principal, PrincipalKey, TupleKey, TupleObservation

_CHUNK_BYTES = 1 << 20  # of compressed input per task: small objects travel many to a task
_CHUNK_FILES = 64
_CHUNKS_PER_WORKER = 3  # in flight: one being extracted, the next ones queued


class ObjectRead(msgspec.Struct, array_like=True):
    """What reading and extracting one file gave: its counters (skips, failures), an error
    message for the summary, and its extraction when it was read."""

    name: str
    stats: dict[str, int]
    error: str = ""
    extraction: Extraction | None = None


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity), not the machine's."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class _WireExtraction(msgspec.Struct, array_like=True, gc=False):
    """An `Extraction` as a worker sends it: each first event once (an object's action tuple
    and its region pseudo-tuple share theirs), the tuples as rows that point into `events`."""

    events: list[Event]
    observed: list[tuple[str, str, str, int, int, int, int]]  # key, event index, span, count
    principals: list[tuple[str, str, Principal, int]]  # key, principal, first sighting
    stats: dict[str, int]
    grants: list[Grant]


class _WireRead(msgspec.Struct, array_like=True, gc=False):
    name: str
    stats: dict[str, int]
    error: str
    extraction: _WireExtraction | None


def _to_wire(read: ObjectRead) -> _WireRead:
    ex = read.extraction
    if ex is None:
        return _WireRead(read.name, read.stats, read.error, None)
    index: dict[int, int] = {}
    events: list[Event] = []
    observed = []
    for key, obs in ex.observed.items():
        event = obs.first_event
        i = index.get(id(event))
        if i is None:
            i = index[id(event)] = len(events)
            events.append(event)
        observed.append((*key, i, obs.first_seen, obs.last_seen, obs.count))
    principals = [(*key, p, t) for key, (p, t) in ex.principals.items()]
    wire = _WireExtraction(events, observed, principals, dict(ex.stats), ex.grants)
    return _WireRead(read.name, read.stats, read.error, wire)


def _from_wire(read: _WireRead) -> ObjectRead:
    wire = read.extraction
    if wire is None:
        return ObjectRead(read.name, read.stats, read.error)
    events = wire.events
    ex = Extraction(
        {
            TupleKey(a, p, act): TupleObservation(events[i], first, last, n)
            for a, p, act, i, first, last, n in wire.observed
        },
        {PrincipalKey(a, p): (principal, t) for a, p, principal, t in wire.principals},
        Counter(wire.stats),
        wire.grants,
    )
    return ObjectRead(read.name, read.stats, read.error, ex)


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(list[_WireRead])

# The worker's own extraction state (its cache of identities), set up once per process.
_worker_extractor: Extractor | None = None


def _init_worker(settings: DetectionSettings) -> None:
    # Ctrl-C reaches the whole process group: the parent stops the pool, workers must not
    # each print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    global _worker_extractor
    _worker_extractor = Extractor(settings.per_session_roles)  # no baseline, no policy


def _extract_chunk(names: list[str], max_bytes: int) -> bytes:
    from .replay import read_and_extract  # replay imports this module

    assert _worker_extractor is not None
    return _ENCODER.encode(
        [_to_wire(read_and_extract(Path(name), _worker_extractor, max_bytes)) for name in names]
    )


def _chunks(files: Sequence[Path]) -> Iterator[list[str]]:
    chunk: list[str] = []
    size = 0
    for path in files:
        with suppress(OSError):  # the worker reports it
            size += path.stat().st_size
        chunk.append(str(path))
        if size >= _CHUNK_BYTES or len(chunk) >= _CHUNK_FILES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


@contextmanager
def _sigint_ignored() -> Iterator[None]:
    """SIGINT ignored in this process meanwhile (only the main thread may set handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def extract_in_workers(
    files: Sequence[Path], settings: DetectionSettings, max_bytes: int, jobs: int
) -> Generator[ObjectRead, None, None]:
    """Each file's `ObjectRead`, in the order of `files`, extracted by `jobs` processes.

    Stopping the iteration (a Ctrl-C in the consumer, an error, `close()`) cancels what is
    queued and waits for the workers to finish the object at hand and exit."""
    context = get_context("fork" if os.name == "posix" else "spawn")
    pool = ProcessPoolExecutor(
        max_workers=jobs, mp_context=context, initializer=_init_worker, initargs=(settings,)
    )
    pending: deque[Future[bytes]] = deque()
    chunks = _chunks(files)
    try:
        # The workers are forked at the first submit. Until their initializer ignores SIGINT,
        # a Ctrl-C would kill one half-started (the pool then breaks, and a shutdown may wait
        # for ever): they are forked with SIGINT ignored, which they inherit. A Ctrl-C in those
        # few milliseconds is lost, not half-handled.
        with _sigint_ignored():
            first = next(chunks, None)
            if first is not None:
                pending.append(pool.submit(_extract_chunk, first, max_bytes))
        while pending and len(pending) < jobs * _CHUNKS_PER_WORKER:
            chunk = next(chunks, None)
            if chunk is None:
                break
            pending.append(pool.submit(_extract_chunk, chunk, max_bytes))
        while pending:
            done = pending.popleft().result()
            for chunk in chunks:  # keep the workers fed before decoding
                pending.append(pool.submit(_extract_chunk, chunk, max_bytes))
                break
            for read in _DECODER.decode(done):
                yield _from_wire(read)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
