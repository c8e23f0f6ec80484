"""Build the Lambda artifacts that infra/serverless.yml deploys, into build/.

- build/layer-core.zip: python/ holding the cloudtrail_anomaly package and its third-party
  dependencies exactly as the lock pins them (requirements/layer.txt, exported from uv.lock:
  pyproject's dependencies and the `aws` extra, every version and wheel hash), installed by pip
  as wheels for the target platform (`--require-hashes --no-deps --platform manylinux…_<arch>
  --only-binary=:all: --python-version`), so an x86_64 machine builds an arm64 layer and the
  code deployed runs on the library versions the tests ran on. Lambda unpacks it under /opt,
  and /opt/python is on the runtime's sys.path.
- build/function-<name>.zip: functions/<name>/ as it is in the repo (the handler string is
  `functions/<name>/handler.handler`) and config.toml at the root (/var/task/config.toml, the
  file CLOUDTRAIL_ANOMALY_CONFIG names).
- build/manifest.json: the package's version, architecture, runtime, every installed
  distribution and its version, the sha256 of uv.lock, the config's source and each zip's
  sha256; the deployment checks it against its parameters, a test checks it against the lock.

boto3 and botocore are shipped too (about 30 MB unzipped of the 250 MB limit), although the
Lambda runtime has its own: the runtime's version changes whenever AWS patches it, and a
botocore release can change how a service is spoken to (1.44 moved Athena to a new protocol).
The layer comes first on sys.path, so the function runs the botocore the tests ran.

Zips are reproducible (sorted entries, fixed timestamps), so an unchanged layer keeps its hash
and is not published again. Python files are compiled to .pyc with unchecked hashes when an
interpreter of the target version is found (/opt is read-only, so the runtime could not cache
them and would compile every module at each cold start).

Usage: scripts/build_layers.py [--arch arm64|x86_64] [--runtime python3.12|python3.13]
[--config FILE]; defaults from $LAMBDA_ARCHITECTURE, $LAMBDA_RUNTIME and
$CLOUDTRAIL_ANOMALY_BUILD_CONFIG, else arm64, python3.12 and config.example.toml (the defaults).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "layers" / "core" / "src" / "cloudtrail_anomaly"
FUNCTIONS = ROOT / "functions"
ARCHITECTURES = {"arm64": "aarch64", "x86_64": "x86_64"}
RUNTIMES = ("python3.12", "python3.13")
# manylinux tags whose glibc the runtimes' Amazon Linux 2023 (glibc 2.34) satisfies.
GLIBC_TAGS = ("manylinux2014", "manylinux_2_28", "manylinux_2_34")
LAYER_REQUIREMENTS = ROOT / "requirements" / "layer.txt"
LOCK = ROOT / "uv.lock"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _dist_name(requirement: str) -> str:
    name = requirement
    for stop in "[<>=!~; ":
        name = name.split(stop, 1)[0]
    return name.strip().lower().replace("_", "-")


def pip_install(target: Path, arch: str, python_version: str) -> None:
    machine = ARCHITECTURES[arch]
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    command += ["--target", str(target), "--only-binary=:all:", "--no-compile"]
    # The lock's pins and hashes, every transitive dependency listed: nothing resolved here.
    command += ["--require-hashes", "--no-deps", "-r", str(LAYER_REQUIREMENTS)]
    # The conflict check looks at the interpreter running pip, not at the layer.
    command += ["--no-warn-conflicts", "--root-user-action=ignore"]
    command += ["--implementation", "cp", "--python-version", python_version]
    for tag in GLIBC_TAGS:
        command += ["--platform", f"{tag}_{machine}"]
    subprocess.run(command, check=True)


def installed(site: Path) -> dict[str, str]:
    """Distribution name → version, from the .dist-info folders pip left."""
    found = {}
    for info in site.glob("*.dist-info"):
        meta = (info / "METADATA").read_text(errors="replace")
        fields = dict(line.split(": ", 1) for line in meta.splitlines()[:20] if ": " in line)
        found[_dist_name(fields.get("Name", info.name))] = fields.get("Version", "?")
    return dict(sorted(found.items()))


def package_version() -> str:
    """cloudtrail_anomaly.__version__, the one source of the version (pyproject reads it too)."""
    for line in (PACKAGE / "__init__.py").read_text().splitlines():
        if line.startswith("__version__ = "):
            return str(line.split("=", 1)[1].strip().strip('"'))
    raise SystemExit(f"{PACKAGE / '__init__.py'}: no __version__")


def copy_package(site: Path) -> None:
    shutil.copytree(
        PACKAGE, site / PACKAGE.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )


def target_python(python_version: str) -> str | None:
    """An interpreter of the target version on this machine, to compile .pyc files with."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == python_version:
        return sys.executable
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = sorted(pyenv.glob(f"{python_version}.*/bin/python{python_version}"))
    on_path = shutil.which(f"python{python_version}")
    for candidate in [*map(str, candidates), *([on_path] if on_path else [])]:
        ok = subprocess.run([candidate, "-c", ""], capture_output=True).returncode == 0
        if ok:  # a pyenv shim of a version not selected fails here
            return candidate
    return None


def precompile(tree: Path, python: str, runs_at: str) -> None:
    """Compile every .py under `tree` (tracebacks name `runs_at`/…, where Lambda unpacks it)."""
    options = ["-q", "-j", "0", "--invalidation-mode", "unchecked-hash", "-s", str(tree)]
    subprocess.run(
        [python, "-m", "compileall", *options, "-p", runs_at, str(tree)],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def write_zip(zip_path: Path, tree: Path) -> str:
    """Zip `tree`'s contents reproducibly; returns the zip's sha256."""
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in sorted(p for p in tree.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(tree).as_posix(), ZIP_TIME)
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes(), compresslevel=9)
    return hashlib.sha256(zip_path.read_bytes()).hexdigest()


def build(arch: str, runtime: str, config: Path, out: Path, compile_pyc: str) -> dict[str, Any]:
    python_version = runtime.removeprefix("python")
    compiler = target_python(python_version) if compile_pyc != "no" else None
    if compile_pyc == "yes" and compiler is None:
        raise SystemExit(f"--precompile yes: no python{python_version} on this machine")
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"version": package_version(), "architecture": arch}
    manifest["runtime"] = runtime
    manifest["lock_sha256"] = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    with tempfile.TemporaryDirectory(prefix="layer-") as tmp:
        site = Path(tmp) / "python"
        pip_install(site, arch, python_version)
        shutil.rmtree(site / "bin", ignore_errors=True)  # console scripts: no use in a layer
        manifest["distributions"] = installed(site)
        copy_package(site)
        if compiler:
            precompile(site, compiler, "/opt/python")
        manifest["precompiled"] = bool(compiler)
        zips = {"layer-core.zip": write_zip(out / "layer-core.zip", Path(tmp))}
    for handler in sorted(FUNCTIONS.glob("*/handler.py")):
        name = handler.parent.name
        with tempfile.TemporaryDirectory(prefix=f"function-{name}-") as tmp:
            task = Path(tmp)
            shutil.copytree(
                handler.parent,
                task / "functions" / name,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            )
            shutil.copyfile(config, task / "config.toml")
            if compiler:
                precompile(task, compiler, "/var/task")
            zips[f"function-{name}.zip"] = write_zip(out / f"function-{name}.zip", task)
    source = config.resolve()
    manifest["config"] = (
        source.relative_to(ROOT).as_posix() if source.is_relative_to(ROOT) else str(source)
    )
    manifest["zips"] = zips
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    env = os.environ
    parser.add_argument(
        "--arch", choices=sorted(ARCHITECTURES), default=env.get("LAMBDA_ARCHITECTURE") or "arm64"
    )
    parser.add_argument(
        "--runtime", choices=RUNTIMES, default=env.get("LAMBDA_RUNTIME") or "python3.12"
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=Path(env.get("CLOUDTRAIL_ANOMALY_BUILD_CONFIG") or ROOT / "config.example.toml"),
        help="the TOML config shipped as /var/task/config.toml",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "build")
    parser.add_argument(
        "--precompile",
        choices=("auto", "yes", "no"),
        default="auto",
        help="compile .pyc files (auto: when an interpreter of the target version is found)",
    )
    args = parser.parse_args(argv)
    # argparse does not check defaults (from the environment) against choices
    if args.arch not in ARCHITECTURES:
        parser.error(f"LAMBDA_ARCHITECTURE={args.arch}: one of {', '.join(ARCHITECTURES)}")
    if args.runtime not in RUNTIMES:
        parser.error(f"LAMBDA_RUNTIME={args.runtime}: one of {', '.join(RUNTIMES)}")
    if not args.config.is_file():
        parser.error(f"--config {args.config}: no such file")
    _check_config(args.config)
    manifest = build(args.arch, args.runtime, args.config, args.out, args.precompile)
    for name in manifest["zips"]:
        print(f"{args.out / name}: {(args.out / name).stat().st_size / 1e6:.1f} MB")
    print(f"{args.arch} {args.runtime}; precompiled: {manifest['precompiled']}")
    return 0


def _check_config(path: Path) -> None:
    """Fail the build, not the cold start, on an invalid config (when the core is importable)."""
    try:
        from cloudtrail_anomaly.app.settings import ConfigError, load_config
    except ImportError:
        return
    try:
        load_config(str(path))
    except ConfigError as exc:
        raise SystemExit(f"--config {path}: {exc}") from None


if __name__ == "__main__":
    sys.exit(main())
