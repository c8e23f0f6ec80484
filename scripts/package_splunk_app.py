#!/usr/bin/env python3
"""Check and package the Splunk add-on (splunk/TA-cloudtrail-anomaly) as a .tgz for Splunk.

    python scripts/package_splunk_app.py [--out build/]   # → build/TA-cloudtrail-anomaly-<version>.tgz

Before packaging it parses every .conf file (`read_conf`: stanzas, `key = value`, `\\` line
continuations, `#` comments; a line it cannot read or a key given twice in a stanza is an error)
and checks that app.conf's versions are the package's (`cloudtrail_anomaly.__version__`). The
archive is reproducible: sorted entries, fixed mtime and owner, 0644 files and 0755 folders,
everything under `TA-cloudtrail-anomaly/`, as Splunk and AppInspect expect.
"""

from __future__ import annotations

import argparse
import gzip
import io
import re
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP_NAME = "TA-cloudtrail-anomaly"
APP_DIR = ROOT / "splunk" / APP_NAME
MTIME = 1_767_225_600  # 2026-01-01T00:00:00Z: the archive does not change with the clock

_STANZA = re.compile(r"^\[(?P<name>.*)\]\s*$")
_SETTING = re.compile(r"^(?P<key>[^=\s][^=]*?)\s*=\s?(?P<value>.*)$", re.S)

Conf = dict[str, dict[str, str]]


class ConfError(ValueError):
    """A .conf file Splunk would misread; the message names the file and line."""


def read_conf(path: Path) -> Conf:
    """The stanzas of a Splunk .conf file: name → {key: value}; settings before the first
    stanza go to "default". A value continued with a trailing backslash keeps its line breaks."""
    conf: Conf = {}
    stanza = conf.setdefault("default", {})
    lines = path.read_text(encoding="utf-8").splitlines()
    n = 0
    while n < len(lines):
        line, start = lines[n], n + 1
        while line.endswith("\\") and n + 1 < len(lines):
            n += 1
            line = line[:-1] + "\n" + lines[n]
        n += 1
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if m := _STANZA.match(text):
            stanza = conf.setdefault(m["name"], {})
            continue
        m = _SETTING.match(text)
        if not m:
            raise ConfError(f"{path}:{start}: neither a [stanza] nor key = value: {text[:80]!r}")
        if m["key"] in stanza:
            raise ConfError(f"{path}:{start}: {m['key']} set twice in its stanza")
        stanza[m["key"]] = m["value"].strip()
    if not conf["default"]:
        del conf["default"]
    return conf


def package_version() -> str:
    text = (ROOT / "layers/core/src/cloudtrail_anomaly/__init__.py").read_text(encoding="utf-8")
    m = re.search(r'^__version__ = "([^"]+)"', text, re.M)
    if not m:
        raise SystemExit("no __version__ in cloudtrail_anomaly/__init__.py")
    return m[1]


def check(app_dir: Path = APP_DIR) -> dict[str, Conf]:
    """Every .conf of the add-on, parsed; raises ConfError on the first problem."""
    confs = {
        str(p.relative_to(app_dir)): read_conf(p)
        for p in sorted(app_dir.rglob("*"))
        if p.suffix in (".conf", ".meta")
    }
    app = confs.get("default/app.conf")
    if app is None:
        raise ConfError(f"{app_dir}: no default/app.conf")
    version = package_version()
    for stanza in ("id", "launcher"):
        got = app.get(stanza, {}).get("version")
        if got != version:
            raise ConfError(f"default/app.conf [{stanza}] version = {got}, package is {version}")
    if app.get("id", {}).get("name") != APP_NAME or app.get("package", {}).get("id") != APP_NAME:
        raise ConfError(f"default/app.conf: [id] name and [package] id must be {APP_NAME}")
    return confs


def build(out_dir: Path, app_dir: Path = APP_DIR) -> Path:
    check(app_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{APP_NAME}-{package_version()}.tgz"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in [app_dir, *sorted(app_dir.rglob("*"))]:
            if path.name.startswith(".") or path.name == "__pycache__":
                continue
            info = tarfile.TarInfo(str(Path(APP_NAME) / path.relative_to(app_dir)))
            info.mtime, info.uid, info.gid, info.uname, info.gname = MTIME, 0, 0, "", ""
            if path.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                data = path.read_bytes()
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    with target.open("wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=MTIME) as gz:
        gz.write(raw.getvalue())
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build", help="folder for the .tgz")
    args = parser.parse_args(argv)
    try:
        target = build(args.out)
    except ConfError as exc:
        print(f"package_splunk_app: {exc}", file=sys.stderr)
        return 1
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
