"""Read, inflate, decode and extract local log objects in `--jobs N` processes: N - 1 workers
and the one that owns the baseline.

Only the part of detection that touches every record runs in the workers: classifying the file
name, reading it (capped), decoding it and `Extractor.extract`. What they send back is small, an
`Extraction` of the object's distinct tuples, and the one process that owns the baseline takes
the results in delivery order (`Detector.process_extracted`), so claims, policy and alerts are
those of a run in one process. That process extracts too: when the next chunk in order is not
ready, it takes the next few files nobody has taken (`_Dispatch`), so that neither it nor a
worker waits while there is work. Memory stays bounded: a process holds one object at a time,
and at most `_CHUNKS_PER_WORKER` full chunks per process are taken and not yet claimed.

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
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, suppress
from functools import partial
from multiprocessing import get_context

import msgspec

try:
    import fcntl
except ImportError:  # not on Windows
    fcntl = None  # type: ignore[assignment]

from ..domain.detector import DetectionSettings
from ..domain.extract import Extraction, Extractor
from ..domain.model import Event, Grant, Principal, PrincipalKey, TupleKey, TupleObservation

_CHUNK_BYTES = 1 << 20  # of compressed input per task: small objects travel many to a task
_CHUNK_FILES = 64
_STEAL_FILES = 8  # a chunk this process takes for itself: it claims, too, and looks again soon
_CHUNKS_PER_WORKER = 3  # taken and not yet claimed, per process
_RESULT_PIPE_BYTES = 1 << 20  # a chunk's results in one write (Linux's pipes hold 64 KiB)


class WorkerDied(Exception):
    """A worker process ended abruptly (killed: by the out-of-memory killer, say). What this
    process claimed before stays claimed; the files from `first` on were not read."""

    def __init__(self, first: str) -> None:
        super().__init__(
            f"a --jobs worker process ended abruptly (killed, by the out-of-memory killer or a "
            f"signal) while reading {first} or the files after it"
        )
        self.first = first


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
        [_to_wire(read_and_extract(name, _worker_extractor, max_bytes)) for name in names]
    )


class _Chunk:
    """Consecutive files that go to one process: a worker (`future`) or this one (`reads`)."""

    __slots__ = ("future", "names", "reads", "size", "weight")

    def __init__(self, names: list[str], size: int) -> None:
        self.names = names
        self.size = size  # compressed bytes
        # What it holds against the bound on chunks taken: a full chunk (files or bytes) is 1.
        self.weight = max(len(names) / _CHUNK_FILES, min(1.0, size / _CHUNK_BYTES))
        self.future: Future[bytes] | None = None
        self.reads: list[ObjectRead] | None = None


class _Files:
    """The files in order, cut into chunks as they are taken: a worker's of up to
    `_CHUNK_FILES` files, this process's of up to `_STEAL_FILES` (it takes one while the next
    chunk in order is not ready, and should look again soon), both up to `_CHUNK_BYTES`."""

    def __init__(self, files: Sequence[str | os.PathLike[str]]) -> None:
        self._files = files
        self._at = 0

    def take(self, max_files: int) -> _Chunk | None:
        names: list[str] = []
        size = 0
        files = self._files
        while self._at < len(files) and len(names) < max_files and size < _CHUNK_BYTES:
            path = os.fspath(files[self._at])
            self._at += 1
            with suppress(OSError):  # whoever reads it reports it
                size += os.stat(path).st_size  # noqa: PTH116 (no Path per file)
            names.append(path)
        return _Chunk(names, size) if names else None


class _Dispatch:
    """Hands the chunks out in order: to the workers as they finish one (from the pool's
    thread, by a done-callback, so a worker never waits for this process to be free), and to
    this process when it would otherwise wait. The chunks taken and not yet consumed are
    `taken`, in order; at most `limit` full chunks' worth, so memory stays bounded however far
    ahead the workers run."""

    def __init__(
        self, files: _Files, pool: ProcessPoolExecutor, workers: int, max_bytes: int
    ) -> None:
        self._lock = threading.Lock()
        self._files = files
        self._pool = pool
        self._workers = workers
        self._max_bytes = max_bytes
        self._limit = (workers + 1) * _CHUNKS_PER_WORKER  # in full chunks (`_Chunk.weight`)
        self._taken = 0.0  # the weight of `taken`
        self.taken: deque[_Chunk] = deque()
        self._running: set[Future[bytes]] = set()
        self._running_bytes = 0
        self._closed = False

    def _next(self, max_files: int) -> _Chunk | None:
        """The next chunk, unless `limit` full chunks' worth are taken and not consumed (under
        the lock); `_take` it once it is a worker's or this process's."""
        return None if self._taken >= self._limit else self._files.take(max_files)

    def _take(self, chunk: _Chunk) -> None:
        self.taken.append(chunk)
        self._taken += chunk.weight

    def pop(self) -> _Chunk:
        """The next chunk in order, consumed: its room in `taken` is free again."""
        with self._lock:
            chunk = self.taken.popleft()
            self._taken -= chunk.weight
            return chunk

    def feed(self) -> None:
        """Submit chunks while a worker lacks one: each worker has one, and a second queued
        behind it when the two are small (a big object waits for whichever process is free
        first, rather than queue behind another one)."""
        submitted: list[tuple[Future[bytes], int]] = []
        with self._lock:
            while not self._closed:
                n = len(self._running)
                if n >= 2 * self._workers or (
                    n >= self._workers and self._running_bytes >= self._workers * _CHUNK_BYTES
                ):
                    break
                chunk = self._next(_CHUNK_FILES)
                if chunk is None:
                    break
                future = chunk.future = self._pool.submit(
                    _extract_chunk, chunk.names, self._max_bytes
                )
                self._take(chunk)  # with its future: never mistaken for this process's
                self._running.add(future)
                self._running_bytes += chunk.size
                submitted.append((future, chunk.size))
        # Outside the lock: a future already done runs its callback here and now.
        for future, size in submitted:
            future.add_done_callback(partial(self._done, size=size))

    def _done(self, future: Future[bytes], *, size: int) -> None:
        with self._lock:
            self._running.discard(future)
            self._running_bytes -= size
        if not future.cancelled() and future.exception() is None:
            self.feed()

    def steal(self) -> _Chunk | None:
        """The next chunk nobody has taken, for this process (None: all taken, or `limit`)."""
        with self._lock:
            chunk = self._next(_STEAL_FILES)
            if chunk is not None:
                self._take(chunk)
            return chunk

    def close(self) -> None:
        with self._lock:
            self._closed = True


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
    files: Sequence[str | os.PathLike[str]],
    settings: DetectionSettings,
    max_bytes: int,
    jobs: int,
    extractor: Extractor | None = None,
) -> Generator[ObjectRead, None, None]:
    """Each file's `ObjectRead`, in the order of `files`, extracted by `jobs` processes: this
    one (with `extractor`) and `jobs - 1` workers.

    The files go in chunks, in order, to whichever process is free (`_Dispatch`): a worker
    when it finishes one, and this process when the next chunk in order is not ready yet.
    Rather than wait, it extracts the next chunk nobody has taken, which then travels through
    no pipe. So this process claims while the workers extract, and extracts too whenever
    claiming leaves it time. Stopping the iteration (a Ctrl-C in the consumer, an error,
    `close()`) cancels what is queued and waits for the workers to finish the chunk at hand
    and exit."""
    extractor = extractor or Extractor(settings.per_session_roles)
    context = get_context("fork" if os.name == "posix" else "spawn")
    workers = max(1, jobs - 1)
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(settings,)
    )
    _widen_result_pipe(pool)
    dispatch = _Dispatch(_Files(files), pool, workers, max_bytes)
    taken = dispatch.taken
    try:
        # The workers are forked at the first submit. Until their initializer ignores SIGINT,
        # a Ctrl-C would kill one half-started (the pool then breaks, and a shutdown may wait
        # for ever): they are forked with SIGINT ignored, which they inherit. A Ctrl-C in those
        # few milliseconds is lost, not half-handled.
        with _sigint_ignored():
            dispatch.feed()
        while taken or dispatch.steal() is not None:
            head = taken[0]
            if head.future is not None and not head.future.done():
                # The next in order is not ready: extract a later one here meanwhile.
                stolen = dispatch.steal()
                if stolen is not None:
                    stolen.reads = _extract_here(stolen, extractor, max_bytes)
                    continue
            dispatch.pop()
            if head.future is None:
                yield from (
                    head.reads
                    if head.reads is not None
                    else _extract_here(head, extractor, max_bytes)
                )
            else:
                try:
                    done = head.future.result()
                except BrokenProcessPool:
                    raise WorkerDied(head.names[0]) from None
                dispatch.feed()  # its place in `taken` is free again
                for read in _DECODER.decode(done):
                    yield _from_wire(read)
    finally:
        dispatch.close()
        pool.shutdown(wait=True, cancel_futures=True)


def _widen_result_pipe(pool: ProcessPoolExecutor) -> None:
    """Let the pipe that brings the workers' results hold a chunk's worth. A chunk of small
    objects comes back in ~170 KB; through a 64 KiB pipe the worker waited three times a chunk
    on this process's reader thread, itself waiting for the GIL: the demo history's `--jobs 2`
    run took 10 % longer. Linux only (F_SETPIPE_SZ, within /proc/sys/fs/pipe-max-size); the
    pool's queue is not public, so where it is not found nothing changes but the speed."""
    setsize = getattr(fcntl, "F_SETPIPE_SZ", None)
    reader = getattr(getattr(pool, "_result_queue", None), "_reader", None)
    if setsize is None or reader is None:
        return
    with suppress(OSError):  # beyond pipe-max-size, say
        fcntl.fcntl(reader.fileno(), setsize, _RESULT_PIPE_BYTES)


def _extract_here(chunk: _Chunk, extractor: Extractor, max_bytes: int) -> list[ObjectRead]:
    from .replay import read_and_extract  # replay imports this module

    return [read_and_extract(name, extractor, max_bytes) for name in chunk.names]
