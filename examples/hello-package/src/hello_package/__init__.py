"""Greets whoever runs it."""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version

__all__ = ["greeting", "main"]


def greeting(name: str | None = None) -> str:
    if name:
        return f"Hello, {name}!"
    return "Hello from hello-package!"


def installed_version() -> str:
    try:
        return version("hello-package")
    except PackageNotFoundError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "--version":
        print(installed_version())
        return 0
    print(greeting(" ".join(args) or None))
    return 0
