"""Read, inflate, decode and extract local log objects in worker processes (`--jobs N`).

Only the part of detection that touches every record runs in the workers: classifying the file
name, reading it (capped), decoding it and `Extractor.extract`. What they send back is small, an
`Extraction` of the object's distinct tuples, and the one process that owns the baseline takes
the results in delivery order (`Detector.process_extracted`), so claims, policy and alerts are
those of a run in one process. Memory stays bounded: a worker holds one object at a time, and at
most `_CHUNKS_PER_WORKER` chunks of objects are in flight per worker.

Results travel as msgpack (msgspec), not pickle: decoding them is the claiming process's cost
per object, and pickle's rebuilding of slotted dataclasses costs about twice as much.
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
from typing import Any

import msgspec

from ..domain.detector import DetectionSettings
from ..domain.extract import Extraction, Extractor

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


def _counter(kind: type, obj: Any) -> Any:
    if kind is Counter or getattr(kind, "__origin__", None) is Counter:
        return Counter(obj)
    raise NotImplementedError(kind)


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(list[ObjectRead], dec_hook=_counter)

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
        [read_and_extract(Path(name), _worker_extractor, max_bytes) for name in names]
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
            yield from _DECODER.decode(done)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
