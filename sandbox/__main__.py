"""`python -m sandbox [gitlab|sigstore|pypi|demo] ...`: the local stand-ins as processes.

Without a sub-command all stand-ins start together, consistent with each other.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    command = argv[0] if argv and not argv[0].startswith("-") else "all"
    rest = argv[1:] if command != "all" else argv
    if command == "gitlab":
        from sandbox.gitlab.cli import main as gitlab_main

        return gitlab_main(rest)
    if command == "sigstore":
        from sandbox.sigstore.cli import main as sigstore_main

        return sigstore_main(rest)
    if command == "pypi":
        from sandbox.pypi.cli import main as pypi_main

        return pypi_main(rest)
    if command == "all":
        from sandbox.combined import main as combined_main

        return combined_main(rest)
    if command == "demo":
        from sandbox.demo import main as demo_main

        return demo_main(rest)
    print(
        f"unknown sandbox command {command!r}: use gitlab, sigstore, pypi or demo", file=sys.stderr
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
