#!/usr/bin/env python3
"""Write docs/alert.schema.json from the code (`formats/schema.py`), or check it is current.

python scripts/alert_schema.py           # writes docs/alert.schema.json
python scripts/alert_schema.py --check   # exit 1 if the file differs from the code
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson
from cloudtrail_anomaly.formats.schema import alert_schema

TARGET = Path(__file__).resolve().parents[1] / "docs" / "alert.schema.json"


def render() -> bytes:
    return orjson.dumps(alert_schema(), option=orjson.OPT_INDENT_2) + b"\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the file is current")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not TARGET.exists() or TARGET.read_bytes() != text:
            print(f"{TARGET} is out of date: run python scripts/alert_schema.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_bytes(text)
    print(TARGET)
    return 0


if __name__ == "__main__":
    sys.exit(main())
