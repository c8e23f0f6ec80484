"""Read, inflate, decode and extract local log objects in `--jobs N` processes: N - 1 workers
and the one that owns the baseline.

Only the part of detection that touches every record runs in the workers: classifying the file
name, reading it (capped), decoding it and `Extractor.extract`. What they send back is small, an
`Extraction` of the object's distinct tuples, and the one process that owns the baseline takes
the results in delivery order (`Detector.process_extracted`), so claims, policy and alerts are
those of a run in one process. That process extracts too: when the next chunk in order is not
ready, it takes the next few files nobody has taken, so that neither it nor a worker waits
while there is work. Workers take their chunks themselves (`_Shared`), so none waits for this
process to hand it one, and this process runs no thread: the results come through one pipe per
worker, read when they are needed. Memory stays bounded: a process holds one object at a time,
and at most `_CHUNKS_PER_WORKER` chunks per process are taken and not yet claimed.

Results travel as msgpack (msgspec), not pickle: decoding them is the claiming process's cost
per object, and pickle's rebuilding of objects costs about twice as much; each first event is
sent once (`_WireExtraction`), not once per tuple that shares it.
"""

from __future__ import annotations

import os
import signal
import struct
import threading
from collections import Counter
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager, suppress
from multiprocessing import get_context
from multiprocessing.connection import Connection, wait
from typing import Any

import msgspec

try:
    import fcntl
except ImportError:  # not on Windows
    fcntl = None  # type: ignore[assignment]

from ..domain.detector import DetectionSettings
from ..domain.extract import Extraction, Extractor
from ..domain.model import Event, Grant, Principal, PrincipalKey, TupleKey, TupleObservation
from ..trail.reader import gc_paused

_CHUNK_BYTES = 1 << 20  # of compressed input per task: small objects travel many to a task
_CHUNK_FILES = 64
_STEAL_FILES = 8  # a chunk this process takes for itself: it claims, too, and looks again soon
_CHUNKS_PER_WORKER = 3  # taken and not yet claimed, per process
_RESULT_PIPE_BYTES = 1 << 20  # a chunk's results in one write (Linux's pipes hold 64 KiB)
_PARENT_CHECK_S = 1.0  # a worker waiting for a slot looks this often whether its parent runs


class WorkerDied(Exception):
    """A worker process ended abruptly (killed: by the out-of-memory killer, say). What this
    process claimed before stays claimed; the files from `first` on were not read."""

    def __init__(self, first: str, exitcode: int | None = None) -> None:
        if exitcode is not None and exitcode < 0:
            try:
                how = f"killed by {signal.Signals(-exitcode).name}"
            except ValueError:
                how = f"killed by signal {-exitcode}"
            if -exitcode == getattr(signal, "SIGKILL", 9):
                how += ": the out-of-memory killer, or kill -9"
        elif exitcode:
            how = f"exited with status {exitcode}: its error is above"
        else:
            how = "killed, by the out-of-memory killer or a signal"
        super().__init__(
            f"a --jobs worker process ended abruptly ({how}) while reading {first} or the files "
            "after it"
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
    and its region pseudo-tuple share theirs), the tuples as rows that point into `events`.
    Keys travel as the NamedTuples they are: msgspec builds them, at half the cost of calling
    their constructors here."""

    events: list[Event]
    observed: list[tuple[TupleKey, int, int, int, int]]  # key, event index, span, count
    principals: list[tuple[PrincipalKey, Principal, int]]  # key, principal, first sighting
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
        observed.append((key, i, obs.first_seen, obs.last_seen, obs.count))
    principals = [(key, p, t) for key, (p, t) in ex.principals.items()]
    wire = _WireExtraction(events, observed, principals, dict(ex.stats), ex.grants)
    return _WireRead(read.name, read.stats, read.error, wire)


def _from_wire(read: _WireRead) -> ObjectRead:
    wire = read.extraction
    if wire is None:
        return ObjectRead(read.name, read.stats, read.error)
    events = wire.events
    stats: Counter[str] = Counter()
    dict.update(stats, wire.stats)  # Counter's own update runs in Python
    ex = Extraction(
        {
            key: TupleObservation(events[i], first, last, n)
            for key, i, first, last, n in wire.observed
        },
        {key: (principal, t) for key, principal, t in wire.principals},
        stats,
        wire.grants,
    )
    return ObjectRead(read.name, read.stats, read.error, ex)


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(list[_WireRead])
_HEADER = struct.Struct("<qq")  # a result's chunk: its first file and the one after its last

# The shared state's slots (`_Shared`): the first file nobody has taken, whether to stop, and
# for each worker the first file of the chunk it is reading (-1: none).
_NEXT, _STOP, _READING = 0, 1, 2


class _Shared:
    """What this process and its `workers` share, made in `context`: the files, where the next
    chunk starts (under `lock`), and `room`, a slot per chunk that may be taken and not yet
    consumed. A process takes a slot before it takes a chunk; this one gives it back when it
    consumes the chunk, so however far ahead the workers run, at most `_CHUNKS_PER_WORKER`
    chunks per process are taken and not consumed."""

    def __init__(self, context: Any, names: list[str], workers: int) -> None:
        self.context = context
        self.names = names
        self.workers = workers
        self.lock = context.Lock()
        self.room = context.Semaphore((workers + 1) * _CHUNKS_PER_WORKER)
        self.state = context.RawArray("q", _READING + workers)
        for w in range(workers):
            self.state[_READING + w] = -1

    def take(self, max_files: int) -> tuple[int, int] | None:
        """The next chunk nobody has taken, as (first, after last) file; call under `lock`,
        with a slot taken. It ends at `max_files` files or `_CHUNK_BYTES` of input."""
        names, state = self.names, self.state
        start = state[_NEXT]
        if state[_STOP] or start >= len(names):
            return None
        end, size = start, 0
        while end < len(names) and end - start < max_files and size < _CHUNK_BYTES:
            with suppress(OSError):  # whoever reads it reports it
                size += os.stat(names[end]).st_size  # noqa: PTH116 (no Path per file)
            end += 1
        state[_NEXT] = end
        return start, end


def _work(
    number: int,
    shared: _Shared,
    settings: DetectionSettings,
    max_bytes: int,
    results: Connection,
    inherited: list[int],
) -> None:
    """A worker: take the next chunk, extract it, send it, until none is left (or `_STOP`)."""
    # Ctrl-C reaches the whole process group: the claiming process stops the workers, they must
    # not each print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for fd in inherited:  # read ends of result pipes: this process only writes its own
        with suppress(OSError):
            os.close(fd)
    from .replay import read_and_extract  # replay imports this module

    extractor = Extractor(settings.per_session_roles)  # no baseline, no policy
    names, reading = shared.names, _READING + number
    parent = os.getppid()
    try:
        while True:
            if not _acquire(shared.room, parent) or not _acquire(shared.lock, parent):
                return
            try:
                chunk = shared.take(_CHUNK_FILES)
                if chunk is None:
                    return
                shared.state[reading] = chunk[0]
            finally:
                shared.lock.release()
            start, end = chunk
            reads = [
                _to_wire(read_and_extract(names[i], extractor, max_bytes))
                for i in range(start, end)
            ]
            results.send_bytes(_HEADER.pack(start, end) + _ENCODER.encode(reads))
            shared.state[reading] = -1
    except (BrokenPipeError, EOFError):  # the claiming process stopped reading: it is done
        return


def _acquire(lock: Any, parent: int) -> bool:
    """Acquire `lock` (or a semaphore's slot), looking every second whether the claiming
    process still runs: killed (SIGKILL, the out-of-memory killer), it gives back no slot, and a
    worker waiting for one would wait for ever. False once it is gone."""
    while not lock.acquire(timeout=_PARENT_CHECK_S):
        if os.getppid() != parent:
            return False
    return True


class _Worker:
    __slots__ = ("number", "process", "results")

    def __init__(self, number: int, process: Any, results: Connection) -> None:
        self.number = number
        self.process = process
        self.results = results


class _Workers:
    """The worker processes, each with its own pipe of results (one writer, no lock), read
    here only: no thread of this process handles them, so none takes the GIL from the claims
    and the extraction it runs."""

    def __init__(self, shared: _Shared, settings: DetectionSettings, max_bytes: int) -> None:
        self._shared = shared
        self._args = (settings, max_bytes)
        self.live: list[_Worker] = []

    def start(self) -> None:
        context = self._shared.context
        fork = context.get_start_method() == "fork"
        for number in range(self._shared.workers):
            reader, writer = context.Pipe(duplex=False)
            _widen(reader)
            # A forked worker holds this process's read ends, its own pipe's too: it closes
            # them, or a worker blocked writing would never learn that nobody reads.
            inherited = [w.results.fileno() for w in self.live] + [reader.fileno()] if fork else []
            process = context.Process(
                target=_work,
                args=(number, self._shared, *self._args, writer, inherited),
                name=f"cloudtrail-anomaly-jobs-{number + 1}",
                daemon=True,
            )
            process.start()
            writer.close()  # the worker's end: at its exit, reading here ends (EOFError)
            self.live.append(_Worker(number, process, reader))

    def receive(self, into: dict[int, tuple[int, Any]], timeout: float | None) -> None:
        """Add the results that have come (waiting up to `timeout` for one) to `into`, by first
        file. A worker that exited is forgotten once its pipe is empty; one that was killed
        raises `WorkerDied`."""
        if not self.live and timeout is None:  # nobody left to wait for: a hang otherwise
            raise RuntimeError("--jobs: every worker has exited, and a file was never read")
        by_handle = {w.results: w for w in self.live} | {w.process.sentinel: w for w in self.live}
        for handle in wait(list(by_handle), timeout):
            worker = by_handle[handle]
            if worker not in self.live:  # its pipe and its exit were both ready: done with it
                continue
            if handle is worker.results:
                self._read(worker, into)
            else:  # it exited: read what it sent before it did
                while worker in self.live and worker.results.poll():
                    self._read(worker, into)
                if worker in self.live and worker.process.exitcode:
                    raise self._died(worker)

    def _read(self, worker: _Worker, into: dict[int, tuple[int, Any]]) -> None:
        try:
            data = worker.results.recv_bytes()
        except EOFError:  # exited, and all it sent is read
            worker.process.join()
            worker.results.close()
            self.live.remove(worker)
            if worker.process.exitcode:
                raise self._died(worker) from None
            return
        start, end = _HEADER.unpack_from(data)
        into[start] = (end, data)

    def _died(self, worker: _Worker) -> WorkerDied:
        at = self._shared.state[_READING + worker.number]
        return WorkerDied(self._shared.names[max(at, 0)], worker.process.exitcode)

    def close(self) -> None:
        """Stop the workers: they take nothing more, and one writing a result nobody will read
        gets a broken pipe; each finishes the file at hand and exits."""
        shared = self._shared
        # Without the lock: a worker killed while it held it never gave it back. A worker that
        # takes one more chunk meanwhile finds nobody reading its result.
        shared.state[_STOP] = 1
        for _ in self.live:
            shared.room.release()  # a worker waiting for room wakes, and sees `_STOP`
        for worker in self.live:
            worker.results.close()
        for worker in self.live:
            worker.process.join(timeout=10)
            if worker.process.is_alive():  # stuck: it reads a file and nothing else
                worker.process.kill()
                worker.process.join()
        self.live = []


def _widen(reader: Connection) -> None:
    """Let a result pipe hold a chunk's results. A chunk of small objects comes back in ~170
    KB; through Linux's 64 KiB pipe the worker waited three times a chunk for this process to
    read. Linux only (F_SETPIPE_SZ, within /proc/sys/fs/pipe-max-size)."""
    setsize = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setsize is not None:
        with suppress(OSError):  # beyond pipe-max-size, say
            fcntl.fcntl(reader.fileno(), setsize, _RESULT_PIPE_BYTES)


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

    The files go in chunks, in order, to whichever process is free: a worker takes the next
    chunk nobody has taken as soon as it has sent the last one, and this process, when the next
    chunk in order is not ready yet, extracts the next one nobody has taken rather than wait
    (a few files: it claims too, and looks again soon); that chunk travels through no pipe.
    Stopping the iteration (a Ctrl-C in the consumer, an error, `close()`) stops the workers:
    each finishes the file at hand and exits."""
    from .replay import read_and_extract  # replay imports this module

    extractor = extractor or Extractor(settings.per_session_roles)
    shared = _Shared(
        get_context("fork" if os.name == "posix" else "spawn"),
        [os.fspath(f) for f in files],
        max(1, jobs - 1),
    )
    workers = _Workers(shared, settings, max_bytes)
    names, lock, room = shared.names, shared.lock, shared.room
    ready: dict[int, tuple[int, Any]] = {}  # chunks taken and done, not consumed, by first file
    at = 0  # the next file in order
    try:
        # A Ctrl-C while a worker is forked, before it ignores SIGINT, would kill it half
        # started: they are forked with SIGINT ignored, which they inherit. A Ctrl-C in those
        # few milliseconds is lost, not half-handled.
        with _sigint_ignored():
            workers.start()
        while at < len(names):
            got = ready.pop(at, None)
            if got is None:
                workers.receive(ready, 0)
                got = ready.pop(at, None)
            if got is None:
                # The next in order is not ready: extract the next chunk nobody has taken here
                # meanwhile (that is the next in order itself when nobody has taken it).
                # (A slot is free whenever `at` is not taken: every chunk before it is consumed.)
                chunk = None
                if room.acquire(False):
                    # A worker killed while it held the lock never gives it back: rather than
                    # wait for it, wait below for a worker (and learn that one died).
                    if lock.acquire(timeout=_PARENT_CHECK_S):
                        try:
                            chunk = shared.take(_STEAL_FILES)
                        finally:
                            lock.release()
                    if chunk is None:
                        room.release()
                if chunk is None:
                    workers.receive(ready, None)  # all is taken: wait for a worker
                    continue
                start, end = chunk
                reads = [
                    read_and_extract(names[i], extractor, max_bytes) for i in range(start, end)
                ]
                if start != at:
                    ready[start] = (end, reads)
                    continue
                got = (end, reads)
            end, done = got
            room.release()  # consumed: its slot is free again
            at = end
            if isinstance(done, list):
                yield from done
            else:
                with gc_paused():  # decoded msgpack holds no cycles: nothing for it to find
                    decoded = [
                        _from_wire(r) for r in _DECODER.decode(memoryview(done)[_HEADER.size :])
                    ]
                yield from decoded
    finally:
        workers.close()
