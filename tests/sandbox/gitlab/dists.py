"""Tiny but valid wheel and sdist files, built in-process (no build backend, fast)."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import zipfile
from pathlib import Path


def _metadata(name: str, version: str) -> str:
    return (
        "Metadata-Version: 2.1\n"
        f"Name: {name}\n"
        f"Version: {version}\n"
        "Summary: A stand-in test package\n"
        "Requires-Python: >=3.9\n"
    )


def make_wheel(directory: Path, name: str = "hello-package", version: str = "0.1.0") -> Path:
    dist = name.replace("-", "_")
    path = directory / f"{dist}-{version}-py3-none-any.whl"
    files = {
        f"{dist}/__init__.py": f'__version__ = "{version}"\n'.encode(),
        f"{dist}-{version}.dist-info/METADATA": _metadata(name, version).encode(),
        f"{dist}-{version}.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: sandbox-tests\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
    }
    record_lines = []
    for file_name, content in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
        record_lines.append(f"{file_name},sha256={digest},{len(content)}")
    record_lines.append(f"{dist}-{version}.dist-info/RECORD,,")
    files[f"{dist}-{version}.dist-info/RECORD"] = ("\n".join(record_lines) + "\n").encode()
    with zipfile.ZipFile(path, "w") as archive:
        for file_name, content in files.items():
            archive.writestr(zipfile.ZipInfo(file_name, (2024, 1, 1, 0, 0, 0)), content)
    return path


def make_sdist(directory: Path, name: str = "hello-package", version: str = "0.1.0") -> Path:
    dist = name.replace("-", "_")
    path = directory / f"{dist}-{version}.tar.gz"
    files = {
        "PKG-INFO": _metadata(name, version).encode(),
        "pyproject.toml": f'[project]\nname = "{name}"\nversion = "{version}"\n'.encode(),
        f"{dist}/__init__.py": b"",
    }
    with tarfile.open(path, "w:gz") as archive:
        for file_name, content in files.items():
            info = tarfile.TarInfo(f"{dist}-{version}/{file_name}")
            info.size = len(content)
            info.mtime = 1704067200
            archive.addfile(info, io.BytesIO(content))
    return path
