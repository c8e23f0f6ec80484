"""Packaging: one version, the lock, and a CLI that works without the `aws` extra."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "cloudtrail" / "stratus-red-team"

# Runs the CLI in a fresh interpreter where the `aws` extra's packages cannot be imported, as
# after `pip install .` alone.
WITHOUT_AWS = """
import importlib.abc, sys
BLOCKED = ("boto3", "botocore", "requests", "aws_lambda_powertools", "s3transfer")
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
        return None
sys.meta_path.insert(0, Block())
from cloudtrail_anomaly.app.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def cli_without_aws(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_AWS, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_replay_baseline_and_explain_need_no_aws_packages(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    learned = cli_without_aws("baseline", FIXTURES, "--state", state)
    assert learned.returncode == 0, learned.stderr
    replayed = cli_without_aws("replay", FIXTURES, "--learning-days", "0")
    assert replayed.returncode == 0, replayed.stderr
    alerts = [json.loads(line) for line in replayed.stdout.splitlines()]
    assert alerts and all(a["principal"] for a in alerts)
    principal = alerts[0]["principal"]["arn"]
    explained = cli_without_aws("explain", "--state", state, principal)
    assert explained.returncode == 0, explained.stderr
    assert principal in explained.stdout


def test_the_version_has_one_source() -> None:
    from cloudtrail_anomaly import __version__

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" in pyproject["project"]["dynamic"]
    assert "version" not in pyproject["project"]
    assert metadata.version("cloudtrail-anomaly") == __version__
    shown = subprocess.run(
        [sys.executable, "-m", "cloudtrail_anomaly.app.cli.main", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.stdout.strip().endswith(__version__)


def test_the_licence_file_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text


def test_dev_tools_are_a_dependency_group_not_a_published_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert set(project["project"]["optional-dependencies"]) == {"aws"}
    dev = " ".join(project["dependency-groups"]["dev"])
    assert "pytest" in dev and "moto" in dev
    assert "Provides-Extra: dev" not in (metadata.metadata("cloudtrail-anomaly").as_string())


def uv() -> str:
    path = ROOT / ".tools" / "bin" / "uv"
    if not path.exists():
        pytest.skip("uv is installed by `make venv` into .tools/; run the tests through make")
    return str(path)


def test_the_lock_agrees_with_pyproject() -> None:
    checked = subprocess.run(
        [uv(), "lock", "--check", "--offline"], cwd=ROOT, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr


def test_the_layer_requirements_are_the_locks_export() -> None:
    checked = subprocess.run(
        [sys.executable, "scripts/export_layer_requirements.py", "--uv", uv(), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr


def test_every_installed_distribution_is_the_locked_version() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    locked: dict[str, set[str]] = {}  # a package may be locked at one version per Python range
    for package in lock["package"]:
        locked.setdefault(package["name"], set()).add(package.get("version", ""))
    for name, versions in locked.items():
        if name == "cloudtrail-anomaly":
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # a wheel for another platform or Python (the lock is universal)
        assert installed in versions, f"{name} {installed} installed, {versions} locked"


def make_in_copy(
    tmp_path: Path, *args: str, pyproject: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`make ARGS` in a copy of the project's build files (the real uv, a stale venv)."""
    for name in ("Makefile", "pyproject.toml", "uv.lock"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    if pyproject is not None:
        (tmp_path / "pyproject.toml").write_text(pyproject)
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "uv.txt").write_text(
        (ROOT / "requirements" / "uv.txt").read_text()
    )
    (tmp_path / ".tools" / "bin").mkdir(parents=True)
    (tmp_path / ".tools" / "bin" / "uv").symlink_to(uv())
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_stale_lock_is_one_line_saying_how_to_fix_it(tmp_path: Path) -> None:
    text = (ROOT / "pyproject.toml").read_text()
    stale = text.replace('"msgspec>=0.19",', '"msgspec>=0.19",\n    "attrs>=23",', 1)
    assert stale != text
    result = make_in_copy(tmp_path, "venv", pyproject=stale)
    assert result.returncode != 0
    assert (
        result.stderr.strip()
        .splitlines()[-2:][0]
        .startswith("uv.lock is out of date with pyproject.toml: run 'make lock'")
    ), result.stderr
    assert not (tmp_path / ".venv").exists()


def test_an_unsupported_python_is_one_line_naming_the_range(tmp_path: Path) -> None:
    pyenv = Path.home() / ".pyenv" / "versions"
    candidates = sorted(pyenv.glob("3.1[0]*/bin/python3")) + sorted(
        pyenv.glob("3.[89]*/bin/python3")
    )
    old = next((str(p) for p in candidates if subprocess.run([p, "-c", ""]).returncode == 0), None)
    if old is None:
        pytest.skip("no Python older than 3.11 on this machine to try")
    result = make_in_copy(tmp_path, "python-version", f"PYTHON={old}")
    assert result.returncode != 0
    assert "supports Python 3.11 to 3.13" in result.stderr.splitlines()[0]
