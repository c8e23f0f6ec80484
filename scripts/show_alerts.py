"""Print a short, human-readable digest of an alerts JSON Lines file (used by `make demo`)."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import orjson

ORDER = ["critical", "high", "medium", "low", "informational"]


def main(path: str, limit: int = 15) -> int:
    alerts = [orjson.loads(line) for line in Path(path).read_bytes().splitlines() if line.strip()]
    by_severity = Counter(a["severity"] for a in alerts)
    print(
        f"\n{len(alerts)} alerts in {path}: "
        + ", ".join(f"{s} {by_severity[s]}" for s in ORDER if by_severity[s])
    )
    alerts.sort(key=lambda a: (ORDER.index(a["severity"]), a["first_event_time"]))
    for a in alerts[:limit]:
        actions = ", ".join(
            x["action"].split(".amazonaws.com", 1)[0] + ":" + x["event_name"]
            for x in a["new_actions"][:6]
        )
        total = a.get("new_actions_total", len(a["new_actions"]))
        more = f" (+{total - 6} more)" if total > 6 else ""
        print(
            f"  {a['severity']:<13} {a['first_event_time']}  {a['account_id']}  "
            f"{a['principal']['arn']}\n      {actions}{more}"
        )
    if len(alerts) > limit:
        print(f"  ... {len(alerts) - limit} more; every alert is a JSON line in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
