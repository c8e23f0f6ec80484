#!/usr/bin/env python3
"""What cloudtrail-anomaly costs a user: docs/cost.md's tables, recomputed from measured figures.

    python scripts/cost.py            # rewrite the generated tables in docs/cost.md
    python scripts/cost.py --check    # exit 1 if docs/cost.md is not what the figures give
    python scripts/cost.py --figures F --doc D
    python scripts/cost.py --measure --sample sample --records-per-object 100 --files 150 \
        --warm-files 600     # bench_dynamodb.py, with DynamoDB request units counted per phase

Every input is in docs/cost-figures.json: the benchmark figures (with the command that measured
them), the assumptions (each with why), and AWS list prices with their date. This script only
does arithmetic on them; docs/cost.md's prose is written by hand, and the blocks between
`<!-- cost.py: NAME -->` and `<!-- /cost.py -->` are this script's.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "cost-figures.json"
DOC = ROOT / "docs" / "cost.md"
DAYS_A_MONTH = 30
HOURS = 24
MB = 1024**2
GB = 1024**3
TB = 1024**4
BLOCK = re.compile(r"(<!-- cost\.py: (?P<name>[a-z-]+) -->\n)(.*?)(<!-- /cost\.py -->)", re.S)


@dataclass(frozen=True)
class Usage:
    """What processing some CloudTrail costs in billed units (per whatever the caller says)."""

    gb_seconds: float
    invocations: float
    read_units: float
    write_units: float
    ddb_requests: float
    s3_gets: float
    sqs_requests: float
    athena_bytes: float

    def dollars(self, p: dict[str, Any]) -> dict[str, float]:
        return {
            "Lambda": self.gb_seconds * p["lambda_arm64_gb_second"]
            + self.invocations * p["lambda_requests_per_million"] / 1e6,
            "DynamoDB": self.write_units * p["dynamodb_write_units_per_million"] / 1e6
            + self.read_units * p["dynamodb_read_units_per_million"] / 1e6,
            "S3 GET": self.s3_gets * p["s3_get_per_thousand"] / 1e3,
            "SQS": self.sqs_requests * p["sqs_requests_per_million"] / 1e6,
            "Athena": self.athena_bytes * p["athena_per_tb_scanned"] / TB,
        }


class Model:
    def __init__(self, figures: dict[str, Any]) -> None:
        self.f = figures
        self.a: dict[str, float] = {k: v["value"] for k, v in figures["assumptions"].items()}
        self.prices = {k: v for k, v in figures["prices"].items() if isinstance(v, int | float)}
        m = figures["measured"]
        self.ddb = m["dynamodb"]["by_records_per_object"]  # the demo's trail, repacked
        # A trail generated at a denser, closer to real, volume: each tuple seen more often.
        self.ddb_dense = m["dynamodb_dense"]["by_records_per_object"]
        self.per_object_warm_s: dict[int, float] = {
            int(k): v for k, v in m["handler_warm_per_object"]["seconds"].items()
        }
        t = m["throughput"]
        self.cpu_s_per_byte: float = t["handler_warm_s"] / (t["object_mb"] * 1e6)
        self.record_bytes: float = t["object_mb"] * 1e6 / t["records"]
        self.compression: float = t["object_mb"] / t["gzipped_mb"]

    # Lambda -------------------------------------------------------------------------------
    def lambda_seconds(self, records_per_object: float, ddb_requests_per_object: float) -> float:
        """Billed seconds for one object: CPU at the deployed memory's share of a core, plus the
        waits on S3 and DynamoDB (Lambda bills wall time)."""
        a = self.a
        smallest = min(self.per_object_warm_s)
        fixed = (
            self.per_object_warm_s[smallest] - smallest * self.record_bytes * self.cpu_s_per_byte
        )
        cpu = fixed + records_per_object * self.record_bytes * self.cpu_s_per_byte
        share = min(1.0, a["lambda_memory_mb"] / a["lambda_mb_per_vcpu"])
        waits = a["s3_get_latency_s"] + ddb_requests_per_object * a["dynamodb_latency_s"]
        return cpu / share + waits

    # DynamoDB, as measured per 1,000 records (warm) --------------------------------------
    def measured_warm(self, records_per_object: int) -> dict[str, float]:
        return dict(self.ddb[str(records_per_object)]["warm"])

    def per_million_records(self, records_per_object: int) -> Usage:
        """Per million records, on objects of the measured sizes, a warm container."""
        a = self.a
        objects = 1e6 / records_per_object
        warm = self.measured_warm(records_per_object)
        k = 1e6 / warm["records"]
        requests = warm["requests"] * k
        gb_s = objects * self.lambda_seconds(records_per_object, requests / objects)
        gb_s *= a["lambda_memory_mb"] / 1024
        gz_bytes = 1e6 * self.record_bytes / self.compression
        return Usage(
            gb_seconds=gb_s,
            invocations=objects / a["sqs_batch_size"],
            read_units=warm["read_units"] * k,
            write_units=warm["write_units"] * k,
            ddb_requests=requests,
            s3_gets=objects,
            sqs_requests=objects * self.sqs_requests_per_object(),
            athena_bytes=gz_bytes * a["missed_fraction"],
        )

    def sqs_requests_per_object(self) -> float:
        """S3's SendMessage, the poller's share of a ReceiveMessage (billed per 64 KiB of
        payload), the share of a DeleteMessageBatch of 10."""
        a = self.a
        receive = math.ceil(a["sqs_batch_size"] * a["s3_notification_bytes"] / 65536)
        return 1 + receive / a["sqs_batch_size"] + 1 / 10

    # An organization, a day ---------------------------------------------------------------
    def organization_day(self, org: dict[str, Any]) -> tuple[Usage, Usage, dict[str, float]]:
        """(this design, the seeds' design, derived counts) for a day of `org`'s trail."""
        a = self.a
        events, accounts = org["events_per_day"], org["accounts"]
        objects = accounts * a["active_regions_per_account"] * (HOURS * 60 / a["delivery_minutes"])
        per_object = events / objects
        gz_bytes = events * self.record_bytes / self.compression
        tuples = accounts * a["tuples_per_account"]
        # DynamoDB from its parts: the ledger (a consistent read and a write an object), the
        # refreshes (a transactional write each per tuple every refresh interval), new tuples.
        refreshes = tuples / a["refresh_days"]
        claims = accounts * a["new_tuples_per_account_per_day"]
        write_units = objects * 1 + refreshes * 2 + claims * a["write_units_per_claim"]
        read_units = objects * 1 + claims * a["read_units_per_claim"]
        batches = max(objects / a["sqs_batch_size"], min(objects, 86400 / a["batch_window_s"]))
        ddb_requests = objects * (1 / 25 + 1 / 100) + refreshes / 100 + claims
        seconds = objects * self.lambda_seconds(per_object, ddb_requests / objects)
        # Athena, missed mode: a query in an hour with a missed object, reading those objects,
        # at least 10 MB billed each.
        missed = objects * a["missed_fraction"]
        hours_with_missed = HOURS * (1 - math.exp(-missed / HOURS))
        missed_bytes = missed * gz_bytes / objects
        athena_missed = max(missed_bytes, hours_with_missed * a["athena_min_bytes_per_query"])
        ours = Usage(
            gb_seconds=seconds * a["lambda_memory_mb"] / 1024,
            invocations=batches,
            read_units=read_units,
            write_units=write_units,
            ddb_requests=ddb_requests,
            s3_gets=objects + self.reconcile_gets(accounts),
            sqs_requests=objects * self.sqs_requests_per_object() + a["sqs_idle_receives_per_day"],
            athena_bytes=athena_missed,
        )
        # The seeds: each account's query at hour h scans its day partition as it stands (h/24
        # of the day's bytes on average), at least 10 MB.
        per_account = gz_bytes / accounts
        scanned = sum(
            max(per_account * h / HOURS, a["athena_min_bytes_per_query"]) for h in range(1, 25)
        )
        seeds = Usage(0, 0, 0, 0, 0, 0, 0, athena_bytes=accounts * scanned)
        derived = {
            "objects": objects,
            "records_per_object": per_object,
            "gz_gb": gz_bytes / GB,
            "tuples": tuples,
            "refreshes": refreshes,
            "missed": missed,
            "seeds_queries": accounts * HOURS,
        }
        return ours, seeds, derived

    def reconcile_gets(self, accounts: int) -> float:
        """The hourly run reads each account-region's digest of the hour."""
        return accounts * self.a["active_regions_per_account"] * HOURS


# Measuring request units -----------------------------------------------------------------------
# scripts/bench_dynamodb.py counts requests; on-demand DynamoDB bills request units. `--measure`
# runs that bench with a hook on its DynamoDB client that counts the units of the same calls.


def attr_size(value: dict[str, Any]) -> int:
    ((kind, v),) = value.items()
    if kind in ("S",):
        return len(v.encode())
    if kind == "B":
        return len(v)
    if kind == "N":
        return len(str(v).lstrip("-").replace(".", "")) // 2 + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS",):
        return sum(len(s.encode()) for s in v)
    if kind in ("NS",):
        return sum(len(s) // 2 + 1 for s in v)
    if kind == "BS":
        return sum(len(b) for b in v)
    if kind == "L":
        return 3 + sum(attr_size(x) + 1 for x in v)
    if kind == "M":
        return 3 + sum(len(k.encode()) + attr_size(x) + 1 for k, x in v.items())
    return 0


def item_size(item: dict[str, Any]) -> int:
    return sum(len(k.encode()) + attr_size(v) for k, v in item.items())


class UnitCounter:
    """Read and write units of the calls a client makes, as on-demand DynamoDB bills them:
    a write unit per KB written (twice in a transaction; an update counted by its key and
    values), half a read unit per 4 KB read eventually consistently, one consistently, the
    minimum for an item not found."""

    def __init__(self) -> None:
        self.read = 0.0
        self.write = 0.0
        self.requests: Counter[str] = Counter()

    def before(self, model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["units_params"] = params
        op = model.name
        self.requests[op] += 1
        if op == "BatchWriteItem":
            for reqs in params["RequestItems"].values():
                for r in reqs:
                    item = r.get("PutRequest", {}).get("Item") or r.get("DeleteRequest", {}).get(
                        "Key"
                    )
                    self.write += math.ceil(max(item_size(item), 1) / 1024)
        elif op == "PutItem":
            self.write += math.ceil(max(item_size(params["Item"]), 1) / 1024)
        elif op in ("UpdateItem", "DeleteItem"):
            size = item_size(params["Key"]) + sum(
                attr_size(v) for v in params.get("ExpressionAttributeValues", {}).values()
            )
            self.write += math.ceil(max(size, 1) / 1024)
        elif op == "TransactWriteItems":
            for t in params["TransactItems"]:
                ((kind, body),) = t.items()
                if kind == "Put":
                    size = item_size(body["Item"])
                else:
                    size = item_size(body["Key"]) + sum(
                        attr_size(v) for v in body.get("ExpressionAttributeValues", {}).values()
                    )
                self.write += 2 * math.ceil(max(size, 1) / 1024)

    def after(self, model: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        params = context.get("units_params") or {}
        op = model.name
        if op == "BatchGetItem":
            for table, req in params["RequestItems"].items():
                per = 1.0 if req.get("ConsistentRead") else 0.5
                unprocessed = len(
                    (parsed.get("UnprocessedKeys") or {}).get(table, {}).get("Keys", [])
                )
                got = parsed.get("Responses", {}).get(table, [])
                served = len(req["Keys"]) - unprocessed
                units = sum(math.ceil(max(item_size(i), 1) / 4096) for i in got)
                units += max(served - len(got), 0)  # a missing item costs the minimum
                self.read += per * units
        elif op == "GetItem":
            per = 1.0 if params.get("ConsistentRead") else 0.5
            item = parsed.get("Item")
            self.read += per * (math.ceil(max(item_size(item), 1) / 4096) if item else 1)
        elif op in ("Query", "Scan"):
            per = 1.0 if params.get("ConsistentRead") else 0.5
            size = sum(item_size(i) for i in parsed.get("Items", []))
            self.read += per * max(math.ceil(size / 4096), 1)


def measure(bench_args: list[str]) -> int:
    """bench_dynamodb.py with request units counted per phase; prints each phase as JSON."""
    import boto3

    sys.path.insert(0, str(ROOT / "scripts"))
    import bench_dynamodb

    counter = UnitCounter()
    make_client = boto3.client

    def client(service: str, *args: Any, **kwargs: Any) -> Any:
        made = make_client(service, *args, **kwargs)  # type: ignore[call-overload]
        if service == "dynamodb":
            made.meta.events.register("before-parameter-build.dynamodb", counter.before)
            made.meta.events.register("after-call.dynamodb", counter.after)
        return made

    run_phase = bench_dynamodb.run_phase

    def counted(name: str, *args: Any, **kwargs: Any) -> Any:
        r0, w0, q0 = counter.read, counter.write, counter.requests.total()
        phase = run_phase(name, *args, **kwargs)
        row = {
            "phase": name,
            "objects": phase.objects,
            "records": phase.records,
            "requests": counter.requests.total() - q0,
            "read_units": round(counter.read - r0, 1),
            "write_units": counter.write - w0,
            "refreshes": phase.refreshed,
            "alerts": phase.alerts,
        }
        print("UNITS", json.dumps(row), flush=True)
        return phase

    boto3.client = client  # type: ignore[assignment]
    bench_dynamodb.run_phase = counted
    sys.argv = ["bench_dynamodb.py", *bench_args]
    return int(bench_dynamodb.main())


# Rendering ------------------------------------------------------------------------------------


def num(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 0.1:
        return f"{x:.2f}"
    return f"{x:.2g}"


def usd(x: float) -> str:
    if x >= 100:
        return f"${x:,.0f}"
    if x >= 1:
        return f"${x:.2f}"
    if x >= 0.01:
        return f"${x:.2f}"
    return f"${x:.4f}" if x > 0 else "$0"


def byte_size(x: float) -> str:
    for unit, size in (("TB", TB), ("GB", GB), ("MB", MB)):
        if x >= size:
            return f"{x / size:,.1f} {unit}"
    return f"{x / 1024:,.0f} KB"


def table(head: list[str], rows: list[list[str]], right: int = 1, left_tail: int = 0) -> str:
    """A Markdown table: the first `right` columns and the last `left_tail` aligned left."""
    align = ["---"] * right + ["---:"] * (len(head) - right - left_tail) + ["---"] * left_tail
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def measured_block(by_size: dict[str, Any]) -> str:
    rows = []
    for size, phases in sorted(by_size.items(), key=lambda kv: int(kv[0])):
        for phase in ("cold", "warm", "new_container"):
            ph = phases[phase]
            k = 1000 / ph["records"]
            rows.append(
                [
                    f"{int(size):,}",
                    phase.replace("_", " "),
                    f"{ph['objects']:,}",
                    f"{ph['records']:,}",
                    f"{ph['requests'] * k:.1f}",
                    f"{ph['read_units'] * k:.1f}",
                    f"{ph['write_units'] * k:.1f}",
                    f"{ph['refreshes'] * k:.1f}",
                ]
            )
    return table(
        [
            "records an object",
            "phase",
            "objects",
            "records",
            "requests / 1,000 records",
            "read units / 1,000",
            "write units / 1,000",
            "refreshes / 1,000",
        ],
        rows,
        right=2,
    )


def dollars_of(service: str, prices: dict[str, Any]) -> Callable[[Usage], float]:
    return lambda u: u.dollars(prices)[service]


def per_volume_block(model: Model) -> str:
    sizes = sorted(int(s) for s in model.ddb)
    usages = {s: model.per_million_records(s) for s in sizes}
    per_gb = 1e9 / (1e6 * model.record_bytes)  # millions of records in a GB of inflated JSON

    def row(
        name: str, get: Callable[[Usage], float], fmt: Callable[[float], str] = num
    ) -> list[str]:
        out = [name]
        for s in sizes:
            out += [fmt(get(usages[s])), fmt(get(usages[s]) * per_gb)]
        return out

    head = ["per million records / per GB"]
    for s in sizes:
        head += [f"{s:,}-record objects, per M", "per GB"]
    prices = model.prices
    rows = [
        row("Lambda GB-seconds", lambda u: u.gb_seconds),
        row("Lambda invocations", lambda u: u.invocations),
        row("DynamoDB requests", lambda u: u.ddb_requests),
        row("DynamoDB read units", lambda u: u.read_units),
        row("DynamoDB write units", lambda u: u.write_units),
        row("S3 GETs", lambda u: u.s3_gets),
        row("SQS requests", lambda u: u.sqs_requests),
        row("Athena bytes (missed mode)", lambda u: u.athena_bytes, byte_size),
    ]
    for service in ("Lambda", "DynamoDB", "S3 GET", "SQS", "Athena"):
        rows.append(row(f"$ {service}", dollars_of(service, prices), usd))
    rows.append(row("**$ in all**", lambda u: sum(u.dollars(prices).values()), usd))
    return table(head, rows)


def organizations_block(model: Model) -> str:
    rows = []
    for org in model.f["organizations"]:
        ours, seeds, d = model.organization_day(org)
        month = DAYS_A_MONTH
        ours_usd = {k: v * month for k, v in ours.dollars(model.prices).items()}
        seeds_usd = seeds.dollars(model.prices)["Athena"] * month
        name = org["name"]
        rows += [
            [
                name,
                "objects a day (records an object)",
                f"{num(d['objects'])} ({num(d['records_per_object'])})",
                "",
            ],
            [name, "Lambda GB-seconds a day", num(ours.gb_seconds), ""],
            [
                name,
                "DynamoDB read / write units a day",
                f"{num(ours.read_units)} / {num(ours.write_units)}",
                "",
            ],
            [
                name,
                "S3 GETs / SQS requests a day",
                f"{num(ours.s3_gets)} / {num(ours.sqs_requests)}",
                "",
            ],
            [
                name,
                "Athena scanned a day",
                byte_size(ours.athena_bytes),
                f"{byte_size(seeds.athena_bytes)} ({num(d['seeds_queries'])} queries)",
            ],
        ]
        for service, dollars in ours_usd.items():
            seed = usd(seeds_usd) if service == "Athena" else ""
            rows.append([name, f"$ a month: {service}", usd(dollars), seed])
        rows.append(
            [
                name,
                "**$ a month in all**",
                f"**{usd(sum(ours_usd.values()))}**",
                f"**{usd(seeds_usd)}** (Athena alone)",
            ]
        )
    return table(
        ["organization", "", "this design (real time + missed mode)", "seeds' design"],
        rows,
        right=2,
    )


def assumptions_block(figures: dict[str, Any]) -> str:
    rows = [
        [
            f"`{k}`",
            num(v["value"]) if isinstance(v["value"], float) else f"{v['value']:,}",
            v["why"],
        ]
        for k, v in figures["assumptions"].items()
    ]
    p = figures["prices"]
    rows += [
        [f"`{k}`", f"${v:.10g}", "list price" if i else p["source"]]
        for i, (k, v) in enumerate((k, v) for k, v in p.items() if isinstance(v, int | float))
    ]
    return table(["assumption / price", "value", "why"], rows, right=1, left_tail=1)


def targets_block(model: Model) -> str:
    """Issue 18's DynamoDB target: at most 1 request per 1,000 records, warm, on objects of
    100 records and more; on the demo's sparse trail and on the denser one."""
    rows = []
    for trail, by_size in (("dense", model.ddb_dense), ("demo", model.ddb)):
        for size in sorted((int(s) for s in by_size), reverse=True):
            warm = by_size[str(size)]["warm"]
            per_k = warm["requests"] * 1000 / warm["records"]
            store = warm.get("per_1000_by_store", {})
            split = ", ".join(
                f"{k} {store[k]:.1f}" for k in ("baseline", "ledger", "outbox") if k in store
            )
            met = "yes" if per_k <= 1 else ("**no**" if size >= 100 else "no (not a target)")
            rows.append([f"{trail}, {size:,}-record objects, warm", f"{per_k:.2f} ({split})", met])
    return table(
        ["≤ 1 DynamoDB request per 1,000 records", "measured (by store)", "met?"], rows, right=2
    )


BLOCKS: dict[str, Callable[[dict[str, Any], Model], str]] = {
    "targets": lambda f, m: targets_block(m),
    "measured": lambda f, m: measured_block(m.ddb),
    "measured-dense": lambda f, m: measured_block(m.ddb_dense),
    "per-volume": lambda f, m: per_volume_block(m),
    "organizations": lambda f, m: organizations_block(m),
    "assumptions": lambda f, m: assumptions_block(f),
}


def render(doc: str, figures: dict[str, Any]) -> str:
    model = Model(figures)

    def fill(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in BLOCKS:
            raise SystemExit(f"docs/cost.md: unknown block {name!r}")
        return match[1] + BLOCKS[name](figures, model) + match[4]

    return BLOCK.sub(fill, doc)


def blocks(doc: str) -> Iterator[str]:
    return (m["name"] for m in BLOCK.finditer(doc))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--figures", type=Path, default=FIGURES)
    ap.add_argument("--doc", type=Path, default=DOC)
    ap.add_argument("--check", action="store_true", help="fail if the doc is stale")
    ap.add_argument(
        "--measure",
        nargs=argparse.REMAINDER,
        help="run scripts/bench_dynamodb.py with these arguments, counting request units",
    )
    args = ap.parse_args(argv)
    if args.measure is not None:
        return measure(args.measure)
    figures = json.loads(args.figures.read_text())
    doc = args.doc.read_text()
    missing = set(BLOCKS) - set(blocks(doc))
    if missing:
        print(f"{args.doc}: no block for {', '.join(sorted(missing))}", file=sys.stderr)
        return 1
    new = render(doc, figures)
    if args.check:
        if new != doc:
            print(f"{args.doc} is stale: run python scripts/cost.py", file=sys.stderr)
            return 1
        return 0
    args.doc.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
