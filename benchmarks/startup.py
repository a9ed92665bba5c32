"""Median `poetry --version` time with and without the plugin, same machine, same run.

Both figures run the same interpreter and Poetry through a tiny launcher; "without" hides our
entry point from importlib.metadata, so the only difference is our plugin's activation. Runs are
interleaved so that machine drift affects both alike.

Usage: python benchmarks/startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

LAUNCHER = """
import sys
import importlib.metadata as metadata
if sys.argv[1] == "without":
    original = metadata.entry_points
    def entry_points(**params):
        found = original(**params)
        if params.get("group") == "poetry.application.plugin":
            return metadata.EntryPoints(ep for ep in found if not ep.value.startswith("poetry_gitlab_release"))
        return found
    metadata.entry_points = entry_points
sys.argv = ["poetry", "--version"]
from poetry.console.application import main
sys.exit(main())
"""


def run_once(mode: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", LAUNCHER, mode], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    for mode in ("with", "without"):  # warm the file cache
        run_once(mode)
    samples: dict[str, list[float]] = {"with": [], "without": []}
    for _ in range(args.runs):  # interleaved, so drift affects both alike
        for mode in ("without", "with"):
            samples[mode].append(run_once(mode))
    with_plugin = statistics.median(samples["with"])
    without = statistics.median(samples["without"])
    print(f"poetry --version, median of {args.runs} runs each")
    print(f"  without plugin: {without * 1000:7.1f} ms")
    print(f"  with plugin:    {with_plugin * 1000:7.1f} ms")
    print(f"  ratio:          {with_plugin / without:7.3f} (goal <= 1.03)")


if __name__ == "__main__":
    main()
