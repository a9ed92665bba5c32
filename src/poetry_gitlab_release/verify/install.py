"""`--install`: pip-install exactly the verified files, with no second download.

The verified files are linked into a fresh directory that holds nothing else, and pip runs with
`--no-index --find-links <that directory>`: it picks the best-matching verified file (a
compatible wheel, else the sdist) and cannot fetch anything from an index. Dependencies must
therefore already be installed; pip says which one is missing otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from poetry_gitlab_release.errors import ConfigError, OperationalError
from poetry_gitlab_release.gitlab.simple_index import parse_distribution_name
from poetry_gitlab_release.signing.results import FileResult


def target_python(explicit: str | None, env: Mapping[str, str]) -> Path:
    """--python, else the active virtual environment's interpreter, else python3 on PATH."""
    if explicit:
        candidate = Path(explicit)
        found = candidate if candidate.is_file() else shutil.which(explicit)
        if not found:
            raise ConfigError(f"--python {explicit!r}: no such interpreter")
        return Path(found)
    venv = env.get("VIRTUAL_ENV")
    if venv:
        for name in ("bin/python", "Scripts/python.exe"):
            if (Path(venv) / name).is_file():
                return Path(venv) / name
    found = shutil.which("python3") or shutil.which("python")
    if not found:
        raise ConfigError(
            "no Python to install into: activate a virtual environment or pass --python"
        )
    return Path(found)


def install_verified(results: Sequence[FileResult], python: Path, *, workdir: Path) -> list[str]:
    """Install the verified files; returns the pip command line that ran (without paths noise)."""
    files = [result.path for result in results if result.ok and result.path is not None]
    if len(files) != len(results) or not files:
        raise OperationalError("refusing to install: not every file of the release verified")
    requirements = sorted(
        {
            f"{parsed[0]}=={parsed[2]}"
            for path in files
            if (parsed := parse_distribution_name(path.name))
        }
    )
    if not requirements:
        raise OperationalError("nothing to install: no wheel or sdist among the verified files")
    staging = Path(tempfile.mkdtemp(prefix=".verified-", dir=workdir))
    try:
        for path in files:
            link = staging / path.name
            try:
                os.link(path, link)
            except OSError:
                shutil.copyfile(path, link)
        pip_install(python, staging, requirements)
        return requirements
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def pip_install(
    python: Path, directory: Path, requirements: Sequence[str], *, no_deps: bool = False
) -> None:
    """pip install `requirements` from `directory` only: no index, nothing else fetched."""
    command = [str(python), "-m", "pip", "install", "--no-index", "--find-links", str(directory)]
    if no_deps:
        command.append("--no-deps")
    completed = subprocess.run(
        [*command, *requirements], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        lines = (completed.stderr or completed.stdout).strip().splitlines()
        detail = lines[-1] if lines else f"exit {completed.returncode}"
        raise OperationalError(f"pip install of the verified files failed: {detail}")
