#!/usr/bin/env bash
# `make test-latest`: the suite against the newest release of every dependency, ignoring uv.lock
# and [tool.uv]'s constraints, in its own venv (.venv-latest). Prints which versions differ
# from the lock and which tests broke. Not part of CI: it is how an upgrade is tried before
# `make lock` makes it the project's.
set -uo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-.tools/bin/uv}
PYTHON=${PYTHON:-python3}
LATEST=.venv-latest
export UV_PYTHON_DOWNLOADS=never
rm -rf "$LATEST"
"$UV" venv --quiet --python "$PYTHON" "$LATEST"
# --no-config: [tool.uv] (the lock's constraints) is not read; --upgrade: newest of everything.
"$UV" pip install --quiet --no-config --upgrade --python "$LATEST/bin/python" \
  -e '.[aws]' --group dev || { echo "test-latest: the newest releases do not install together"; exit 1; }
echo "--- newer than the lock:"
"$LATEST/bin/python" - <<'PY'
import tomllib
from importlib import metadata
lock = tomllib.load(open("uv.lock", "rb"))
locked = {}
for p in lock["package"]:
    locked.setdefault(p["name"], set()).add(p.get("version", ""))
for dist in sorted(metadata.distributions(), key=lambda d: d.metadata["Name"].lower()):
    name = dist.metadata["Name"].lower().replace("_", "-")
    if name in locked and "" not in locked[name] and dist.version not in locked[name]:
        print(f"  {name}: {', '.join(sorted(locked[name]))} -> {dist.version}")
PY
echo "--- the suite on the newest releases:"
"$LATEST/bin/python" -m pytest -q -p no:cacheprovider -rfE --no-header 2>&1 | tail -40
status=${PIPESTATUS[0]}
[ "$status" -eq 0 ] && echo "test-latest: green; \`make lock\` would take these versions" \
  || echo "test-latest: the failures above are what an upgrade would break"
exit "$status"
