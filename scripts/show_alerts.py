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
        # The detector tells a burst follow-up from the alert it follows (same principal, same
        # severity); the last reason says why it is as loud as it is.
        detector = "" if a.get("detector", "new_action") == "new_action" else f"  [{a['detector']}]"
        reasons = a.get("reasons") or [""]
        print(
            f"  {a['severity']:<13} {a['first_event_time']}  {a['account_id']}  "
            f"{a['principal']['arn']}{detector}\n      {actions}{more}\n      why: {reasons[-1]}"
        )
    if len(alerts) > limit:
        print(f"  ... {len(alerts) - limit} more; every alert is a JSON line in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
