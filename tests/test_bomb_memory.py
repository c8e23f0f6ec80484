"""A gzip bomb under a real memory limit: it fails alone, as too_large, and the batch goes on.

Each case runs in a fresh process under `resource.setrlimit(RLIMIT_AS)` at the memory size the
function is given (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`), with the cap `RealtimeSettings.from_env`
derives from it, as the deployed function does. The bombs are real gzip files, 10 GiB of
inflated bytes each, written a block at a time. Without a cap that fits, inflating one runs the
process out of memory (in Lambda, the whole batch is killed with it).

Under the cap, what decoding builds is bounded too (`reader._Limits`): objects of about nine
tenths of the cap whose decoded records would be several times larger than their JSON (tiny
records, arrays in a field detection reads, records of short strings in every field it reads,
an object laid out otherwise) fail alone as too_large, at 512 and 1,024 MB.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from isal import isal_zlib

MEMORY_MB = 512  # the limit the child runs under, and the memory size it is told it has
BOMB_GIB = 10
ACCOUNT = "123456789012"

# The child: imports only what the function imports for this, then runs under the limit.
CHILD = r"""
import gzip, io, json, resource, sys
memory_mb, mode, bomb = int(sys.argv[1]), sys.argv[2], sys.argv[3]
limit = memory_mb << 20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

from cloudtrail_anomaly.app.settings import RealtimeSettings
from cloudtrail_anomaly.trail.reader import DEFAULT_MAX_BYTES, ObjectError, read_compact, read_records

env = {"BASELINE_TABLE": "baseline", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb)}
cap = RealtimeSettings.from_env(env).max_object_bytes or DEFAULT_MAX_BYTES
out = {"cap": cap}


def peak_rss():
    # VmHWM is this address space's own high-water mark; ru_maxrss would carry over the
    # forking parent's (a large pytest process) across exec.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


if mode in ("read_compact", "read_records"):
    read = read_compact if mode == "read_compact" else read_records
    try:
        with open(bomb, "rb") as fh:
            read(fh, cap)
        out["result"] = "read"
    except ObjectError as exc:
        out["result"], out["message"] = exc.reason, str(exc)
    except MemoryError:
        out["result"] = "MemoryError"
    out["peak_rss"] = peak_rss()
else:
    from cloudtrail_anomaly.stores.memory import MemoryBaseline
    from cloudtrail_anomaly.domain.detector import Detector
    from cloudtrail_anomaly.stores.memory import MemoryLedger
    from cloudtrail_anomaly.domain.policy import AlertPolicy
    from cloudtrail_anomaly.usecases.ingest import RealtimeProcessor
    from cloudtrail_anomaly.ports import ObjectRef, OpenedObject
    from cloudtrail_anomaly.ports import DeliveryReport

    account = sys.argv[4]

    def key(n):
        return (
            f"AWSLogs/{account}/CloudTrail/us-east-1/2024/06/01/"
            f"{account}_CloudTrail_us-east-1_20240601T00{n:02d}Z_obj{n}.json.gz"
        )

    def good(name):
        record = {
            "eventVersion": "1.08",
            "eventTime": "2024-06-01T00:00:00Z",
            "eventSource": "iam.amazonaws.com",
            "eventName": name,
            "awsRegion": "us-east-1",
            "recipientAccountId": account,
            "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{account}:user/alice"},
        }
        return io.BytesIO(gzip.compress(json.dumps({"Records": [record]}).encode()))

    class Source:
        def open(self, bucket, key):
            n = int(key.rsplit("obj", 1)[1].split(".")[0])
            body = open(bomb, "rb") if n == 2 else good(f"Action{n}")
            return OpenedObject(f"etag{n}", body)

    class Sink:
        name = "list"

        def deliver(self, alerts):
            return DeliveryReport(delivered=[a.alert_id for a in alerts])

    baseline, ledger = MemoryBaseline(), MemoryLedger()
    processor = RealtimeProcessor(
        Detector(baseline, AlertPolicy()), Source(), ledger, Sink(),
        outbox=baseline.outbox, max_bytes=cap,
    )
    outcomes = []
    for n in (1, 2, 3):
        try:
            o = processor.process(ObjectRef("trail", key(n)))
            outcomes.append([o.status, o.reason, o.stats.get("records", 0)])
        except MemoryError:
            outcomes.append(["MemoryError", "", 0])
        out.setdefault("peak_rss_after", []).append(peak_rss())
    out["outcomes"] = outcomes
    out["ledger"] = sorted(k[1].rsplit("_", 1)[1] for k in ledger.entries)
print(json.dumps(out))
"""


def _bomb(path: Path, head: bytes, fill: bytes) -> Path:
    """`head` then 10 GiB of `fill`, gzipped a 16 MiB block at a time: a 10 MB file."""
    deflate = isal_zlib.compressobj(1, isal_zlib.DEFLATED, 16 + 15)
    block = fill * ((16 << 20) // len(fill))
    with path.open("wb") as fh:
        fh.write(deflate.compress(head))
        for _ in range((BOMB_GIB << 30) // len(block)):
            fh.write(deflate.compress(block))
        fh.write(deflate.flush())
    return path


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("bombs")
    return {
        # Not laid out as CloudTrail writes: decoded whole, so held whole until the cap.
        "zeros": _bomb(out / "zeros.json.gz", b"", b"\x00"),
        # CloudTrail's layout, one record that never ends: held a part at a time until the cap.
        "one endless record": _bomb(
            out / "record.json.gz", b'{"Records":[{"eventVersion":"1.08","x":"', b"A"
        ),
    }


def _child(mode: str, bomb: Path, memory_mb: int = MEMORY_MB) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(memory_mb), mode, str(bomb), ACCOUNT],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_the_cap_is_derived_from_the_memory_size() -> None:
    from cloudtrail_anomaly.app.settings import RealtimeSettings

    env = {"BASELINE_TABLE": "baseline", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(MEMORY_MB)}
    assert RealtimeSettings.from_env(env).max_object_bytes == (MEMORY_MB << 20) // 4


@pytest.mark.parametrize("mode", ["read_compact", "read_records"])
@pytest.mark.parametrize("kind", ["zeros", "one endless record"])
def test_a_bomb_is_too_large_within_the_memory_limit(
    bombs: dict[str, Path], kind: str, mode: str
) -> None:
    out = _child(mode, bombs[kind])
    assert out["result"] == "too_large", out
    cap = out["cap"]
    assert cap == (MEMORY_MB << 20) // 4
    assert f"{cap:,}-byte cap" in out["message"]
    # The cap and a few pieces over the interpreter (~50 MB), well inside the limit.
    assert out["peak_rss"] < cap + (120 << 20), out
    print(f"{kind}, {mode}: peak RSS {out['peak_rss'] / (1 << 20):.0f} MiB, cap {cap >> 20} MiB")


def _failed_alone(batch: dict[str, Any]) -> None:
    """The middle object of three failed as too large, and only it: the good objects are
    recorded as processed; it is not, so its message is retried (and dead-lettered after
    maxReceiveCount), not the batch."""
    assert batch["outcomes"] == [
        ["processed", "", 1],
        ["failed", "too_large", 0],
        ["processed", "", 1],
    ], batch
    assert batch["ledger"] == ["obj1.json.gz", "obj3.json.gz"]


def test_a_bomb_between_two_good_objects_fails_alone(bombs: dict[str, Path]) -> None:
    out = _child("realtime", bombs["zeros"])
    _failed_alone(out)
    peaks = [p >> 20 for p in out["peak_rss_after"]]
    print(f"realtime batch: peak RSS after each object {peaks} MiB, cap {out['cap'] >> 20} MiB")


# -- under the cap: what decoding builds -----------------------------------------------------

_STRINGS = (
    b'{"eventVersion":"1","eventTime":"ab","@timestamp":"ab","eventSource":"ab",'
    b'"eventName":"ab","eventType":"ab","recipientAccountId":"ab","awsRegion":"ab",'
    b'"eventID":"ab","errorCode":"ab","sourceIPAddress":"ab","userAgent":"ab",'
    b'"eventCategory":"ab","readOnly":"ab","userIdentity":{"type":"ab","arn":"ab",'
    b'"accountId":"ab","principalId":"ab","userName":"ab","invokedBy":"ab",'
    b'"identityProvider":"ab","sessionContext":{"sessionIssuer":{"arn":"ab","userName":"ab",'
    b'"principalId":"ab"}},"onBehalfOf":{"userId":"ab","identityStoreArn":"ab"}}}'
)
# (head, the record repeated, the last record and the end): each inflates to ~0.9 of the cap.
SHAPES: dict[str, tuple[bytes, bytes, bytes]] = {
    # 21 bytes a record; 144 bytes of CompactRecord each
    "tiny records": (b'{"Records":[', b'{"eventVersion":"1"},', b'{"eventVersion":"1"}]}'),
    # an array in a field detection reads: msgspec would build 56 bytes a `[],`
    "arrays in eventTime": (
        b'{"Records":[',
        b'{"eventVersion":"1.08","eventTime":[' + b"[]," * 20_000 + b"[]]},",
        b'{"eventVersion":"1.08"}]}',
    ),
    # 27 strings of 51 bytes and 5 structs for 480 bytes of JSON
    "short strings in every read field": (b'{"Records":[', _STRINGS + b",", _STRINGS + b"]}"),
    # not CloudTrail's layout (a space): decoded whole, at 20 to 30 times its size
    "laid out otherwise": (b'{"Records": [', b"[[],[],[],[]], ", b"[]]}"),
}


def _under_cap(path: Path, head: bytes, unit: bytes, tail: bytes, size: int) -> Path:
    deflate = isal_zlib.compressobj(1, isal_zlib.DEFLATED, 16 + 15)
    block = unit * max(1, (4 << 20) // len(unit))
    with path.open("wb") as fh:
        fh.write(deflate.compress(head))
        for _ in range((size - len(head) - len(tail)) // len(block)):
            fh.write(deflate.compress(block))
        fh.write(deflate.compress(tail))
        fh.write(deflate.flush())
    return path


@pytest.fixture(scope="module")
def under_cap(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], Path]:
    out = tmp_path_factory.mktemp("under_cap")
    return {
        (shape, mb): _under_cap(
            out / f"{n}-{mb}.json.gz", *SHAPES[shape], size=(mb << 20) // 4 * 9 // 10
        )
        for n, shape in enumerate(SHAPES)
        for mb in (512, 1024)
    }


@pytest.mark.parametrize("memory_mb", [512, 1024])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_an_object_under_the_cap_that_decodes_too_large_fails_alone(
    under_cap: dict[tuple[str, int], Path], shape: str, memory_mb: int
) -> None:
    path = under_cap[shape, memory_mb]
    out = _child("read_compact", path, memory_mb)
    assert out["result"] == "too_large", out
    assert f"{out['cap']:,}-byte cap (max_object_bytes)" in out["message"]
    assert "raise the cap" in out["message"]
    # The interpreter and its libraries (~45 MB), 1.75 times the cap (a quarter of the memory)
    # and one part at most: well inside the limit.
    assert out["peak_rss"] < (memory_mb << 20) * 6 // 10, out
    print(
        f"{shape}, {memory_mb} MB: peak RSS {out['peak_rss'] >> 20} MiB, "
        f"cap {out['cap'] >> 20} MiB: {out['message'][:60]}"
    )

    batch = _child("realtime", path, memory_mb)
    if shape == "short strings in every read field":
        # The handler extracts an object as it decodes it (`consume_compact`): these records,
        # too many to hold at once, are never all held, and the object is read whole, in a
        # fraction of the memory (its records are all skipped: none has a time).
        assert [o[:2] for o in batch["outcomes"]] == [["processed", ""]] * 3, batch
        assert batch["outcomes"][1][2] > 100_000
        assert batch["ledger"] == ["obj1.json.gz", "obj2.json.gz", "obj3.json.gz"]
        assert max(batch["peak_rss_after"]) < out["peak_rss"] // 2, (batch, out)
    else:
        _failed_alone(batch)
    assert max(batch["peak_rss_after"]) < (memory_mb << 20) * 6 // 10, batch
