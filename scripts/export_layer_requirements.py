"""Write requirements/layer.txt: the Lambda layer's third-party dependencies as uv.lock pins
them (pyproject's dependencies and its `aws` extra, every transitive one, exact versions with
the hashes of every wheel), for scripts/build_layers.py.

It is derived from uv.lock, never edited: `make lock` rewrites it, and a test fails when it
disagrees with the lock. It exists so that deploying needs pip only, not uv.

Usage: scripts/export_layer_requirements.py [--uv PATH] [--check]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYER_REQUIREMENTS = ROOT / "requirements" / "layer.txt"
HEADER = (
    "# Generated from uv.lock by scripts/export_layer_requirements.py (`make lock`): do not edit.\n"
    "# The Lambda layer's dependencies: pyproject's dependencies and the `aws` extra.\n"
)


def find_uv() -> str:
    for candidate in (
        os.environ.get("UV"),
        str(ROOT / ".tools" / "bin" / "uv"),
        shutil.which("uv"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    raise SystemExit("uv not found: run `make venv` (it installs uv into .tools/) or set UV")


def export(uv: str) -> str:
    command = [uv, "export", "--frozen", "--no-dev", "--extra", "aws", "--no-emit-project"]
    command += ["--no-header", "--format", "requirements-txt", "--quiet"]
    result = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
    return HEADER + result.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uv", help="the uv executable (default: .tools/bin/uv, then PATH)")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = export(args.uv or find_uv())
    if args.check:
        if LAYER_REQUIREMENTS.read_text() != text:
            print(
                f"{LAYER_REQUIREMENTS.relative_to(ROOT)} is stale: run `make lock`", file=sys.stderr
            )
            return 1
        return 0
    LAYER_REQUIREMENTS.write_text(text)
    print(f"wrote {LAYER_REQUIREMENTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
