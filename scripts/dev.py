"""Developer entry point: `python3 scripts/dev.py test` and `python3 scripts/dev.py demo`.

Needs only python3 and git. It creates `.venv` in the repository (once, and again when
pyproject.toml changes), installs the plugin in editable mode with Poetry and the dev tools,
then runs the checks (`test`) or the demo on the local stand-ins (`demo`).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
STAMP = VENV / ".dev-stamp"
# gitlab-ci-local runs the CI examples in the tests (tests/fixtures/ci_local.py). 4.60.0 is the
# last release that runs on Node 18/20; later ones need Node 22.
GITLAB_CI_LOCAL = "gitlab-ci-local@4.60.0"
NODE_PREFIX = ROOT / ".dev" / "node"


def _run(*cmd: str | Path, env: dict[str, str] | None = None) -> None:
    printable = " ".join(str(part) for part in cmd)
    print(f"$ {printable}", flush=True)
    result = subprocess.run([str(part) for part in cmd], cwd=ROOT, env=env, check=False)
    if result.returncode != 0:
        sys.exit(result.returncode)


def _fingerprint() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def ensure_environment() -> None:
    """Create or refresh .venv with the plugin (editable), Poetry and the dev tools."""
    if not PYTHON.exists():
        print(f"creating {VENV.relative_to(ROOT)}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    if STAMP.exists() and STAMP.read_text() == _fingerprint():
        return
    quiet = ["--quiet", "--disable-pip-version-check"]
    _run(PYTHON, "-m", "pip", "install", *quiet, "--upgrade", "pip>=25.1")
    _run(PYTHON, "-m", "pip", "install", *quiet, "--editable", ".", "--group", "dev")
    STAMP.write_text(_fingerprint())


def _apt_install(*packages: str) -> bool:
    """apt-get install as root on a Debian-like machine (CI); False when that is not possible."""
    if shutil.which("apt-get") is None or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    quiet = ["-qq", "-o", "Dpkg::Use-Pty=0"]
    for command in (["update", *quiet], ["install", *quiet, "--no-install-recommends", *packages]):
        print(f"$ apt-get {' '.join(command)}", flush=True)
        if subprocess.run(["apt-get", *command], env=env, check=False).returncode != 0:
            return False
    return True


def ensure_ci_runner() -> None:
    """gitlab-ci-local (npm, into .dev/node) and rsync, for the CI pipeline tests.

    Best effort: without them those tests are skipped, each saying what is missing.
    """
    missing = [tool for tool in ("rsync",) if shutil.which(tool) is None]
    if shutil.which("node") is None or shutil.which("npm") is None:
        missing += ["nodejs", "npm"]
    if missing and not _apt_install(*missing):
        print(
            f"not installed: {', '.join(missing)}; the gitlab-ci-local tests will skip", flush=True
        )
    binary = NODE_PREFIX / "node_modules" / ".bin" / "gitlab-ci-local"
    npm = shutil.which("npm")
    if binary.exists() or npm is None:
        return
    NODE_PREFIX.mkdir(parents=True, exist_ok=True)
    command = [npm, "install", "--prefix", str(NODE_PREFIX), "--no-audit", "--no-fund"]
    print(f"$ npm install --prefix {NODE_PREFIX.relative_to(ROOT)} {GITLAB_CI_LOCAL}", flush=True)
    result = subprocess.run([*command, GITLAB_CI_LOCAL], cwd=ROOT, check=False)
    if result.returncode != 0:
        print("npm could not install gitlab-ci-local; its tests will skip", flush=True)


def _tool_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("VIRTUAL_ENV", None)
    return env


def command_test(pytest_args: list[str]) -> None:
    ensure_environment()
    ensure_ci_runner()
    env = _tool_env()
    _run(BIN / "ruff", "check", ".", env=env)
    _run(BIN / "ruff", "format", "--check", ".", env=env)
    _run(BIN / "mypy", env=env)
    if (ROOT / "mkdocs.yml").exists():
        _run(BIN / "mkdocs", "build", "--strict", "--quiet", "--site-dir", ".dev/site", env=env)
    _run(PYTHON, "-m", "pytest", "-n", "2", "--dist", "loadgroup", *pytest_args, env=env)


def command_demo(demo_args: list[str]) -> None:
    ensure_environment()
    _run(PYTHON, "-m", "sandbox", "demo", *demo_args, env=_tool_env())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("setup", help="create or refresh .venv only")
    sub.add_parser("test", help="set up, then ruff, mypy, docs and the whole pytest suite")
    sub.add_parser("demo", help="set up, then run the release demo on the local stand-ins")
    args, rest = parser.parse_known_args()
    if args.command == "setup":
        ensure_environment()
    elif args.command == "test":
        command_test(rest)
    else:
        command_demo(rest)


if __name__ == "__main__":
    main()
