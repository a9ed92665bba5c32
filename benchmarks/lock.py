"""`gitlab-verify --lock` benchmark, against the local stand-ins, baseline and candidate in one run.

50 locked files (25 packages x 2 files, signed by a tag pipeline of one project, published to
the GitLab stand-in's PyPI and generic registries), every GitLab response delayed by 50 ms:

- candidate: the --lock flow (`verify_lock`, the real `RegistryBackend`) with 8 workers;
- baseline 1: the same flow verifying the files one by one, sequentially (1 worker);
- baseline 2: what a consumer does without --lock: `gitlab-verify NAME==VERSION` for each
  package in turn (the single-release flow, which also downloads every file).

Peak memory (tracemalloc, Python allocations) of the --lock flow for 10 and for 50 files shows
whether it grows with the number of files (goal: flat; nothing is downloaded).

    python benchmarks/lock.py [--packages 25] [--latency 0.05] [--workers 8]
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

PROJECT_PATH = "demo-group/hello-package"
VERSION = "1.0.0"
GOAL_RATIO = 5.0


def publish_packages(gitlab: Any, sigstore: Any, count: int, workdir: Path) -> list[Any]:
    """`count` packages of two files each, signed and published; their poetry.lock entries."""
    from poetry_gitlab_release.files import sha256_file
    from poetry_gitlab_release.verify.lockfile import LockedFile, LockedPackage
    from tests.e2e.verify_support import make_sdist, make_wheel, publish, sign_release

    packages = []
    project_id = gitlab.project_id(PROJECT_PATH)
    for number in range(count):
        name = f"pkg-{number:02d}"
        directory = workdir / name
        directory.mkdir(parents=True)
        files = [
            make_wheel(directory, name=name, version=VERSION),
            make_sdist(directory, name=name, version=VERSION),
        ]
        signed = sign_release(sigstore, gitlab, files, ref=f"v{VERSION}")
        publish(gitlab, signed, name=name, version=VERSION)
        packages.append(
            LockedPackage(
                name,
                VERSION,
                tuple(LockedFile(f.name, sha256_file(f).sha256) for f in files),
                "legacy",
                f"{gitlab.api_url}/projects/{project_id}/packages/pypi/simple",
                "gitlab",
            )
        )
    return packages


def run_lock(settings: Any, trust: Path, packages: list[Any], workers: int) -> Any:
    from poetry_gitlab_release.gitlab.client import GitLabClient
    from poetry_gitlab_release.gitlab.connection import Connection
    from poetry_gitlab_release.pypi.index import IndexConnection, IndexURLs
    from poetry_gitlab_release.signing.trust import make_verifier
    from poetry_gitlab_release.verify.expected import IdentityOptions, signer_from_options
    from poetry_gitlab_release.verify.lock import LockOptions, verify_lock
    from poetry_gitlab_release.verify.lock_backend import RegistryBackend
    from poetry_gitlab_release.verify.lockfile import classify

    def identity_for(package: Any, facts: Any) -> Any:
        return signer_from_options(
            IdentityOptions(),
            server_url=settings.server_url,
            project_path=facts.path,
            version=package.version,
        )

    verifier = make_verifier(trust, None, False)
    pypi = IndexURLs.for_reading("https://pypi.org")
    with (
        GitLabClient(Connection.from_settings(settings)) as client,
        IndexConnection(pypi) as index,
    ):
        report = verify_lock(
            [(p, classify(p, api_url=settings.api_url)) for p in packages],
            backend=RegistryBackend(client, index, settings, online_log=True),
            verifier=verifier,
            options=LockOptions(identity_for=identity_for, concurrency=workers),
        )
    assert report.ok, [row.message() for row in report.rows if not row.ok]
    return report


def run_one_by_one(settings: Any, trust: Path, packages: list[Any], workdir: Path) -> int:
    """`gitlab-verify NAME==VERSION` per package, one after the other."""
    from poetry_gitlab_release.signing.trust import make_verifier
    from poetry_gitlab_release.verify.expected import IdentityOptions, Requirement
    from poetry_gitlab_release.verify.flow import verify_registry

    verified = 0
    for package in packages:
        dest = workdir / f"dest-{package.name}"
        report = verify_registry(
            settings,
            Requirement(package.name, package.version),
            dest=dest,
            identity_options=IdentityOptions(),
            make_verifier=lambda: make_verifier(trust, None, False),
            online_log=True,
        )
        assert report.ok, [r.message() for r in report.results if not r.ok]
        verified += len(report.results)
        shutil.rmtree(dest, ignore_errors=True)
    return verified


def timed(function: Any, *args: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def peak_kib(function: Any, *args: Any) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        function(*args)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 1024


def main(argv: list[str]) -> int:
    from poetry_gitlab_release.config.settings import resolve_settings
    from sandbox.gitlab import GitLabStandIn, Scenario
    from sandbox.sigstore import SigstoreStandIn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--packages", type=int, default=25, help="packages of 2 files each")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per GitLab response")
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="bench-lock-"))
    try:
        with (
            GitLabStandIn(Scenario.default()) as gitlab,
            SigstoreStandIn(issuer=gitlab.url, state_dir=workdir / "sigstore") as sigstore,
        ):
            packages = publish_packages(gitlab, sigstore, args.packages, workdir / "dist")
            files = sum(len(p.files) for p in packages)
            settings = resolve_settings(
                {"host": gitlab.url, "token": gitlab.tokens.read_api, "project": PROJECT_PATH},
                {},
            )
            trust = sigstore.trust_config_path
            run_lock(settings, trust, packages[:2], args.workers)  # warm-up: imports, TUF-free
            gitlab.set_latency(args.latency)

            parallel, _ = timed(run_lock, settings, trust, packages, args.workers)
            sequential, _ = timed(run_lock, settings, trust, packages, 1)
            one_by_one, count = timed(run_one_by_one, settings, trust, packages, workdir)
            assert count == files

            gitlab.set_latency(0)
            small = peak_kib(run_lock, settings, trust, packages[:5], args.workers)
            large = peak_kib(run_lock, settings, trust, packages, args.workers)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    ratio_sequential = sequential / parallel
    ratio_one_by_one = one_by_one / parallel
    print(
        f"locked files: {files} ({len(packages)} packages), GitLab latency {args.latency * 1000:.0f} ms"
    )
    print(f"--lock, {args.workers} workers:               {parallel:6.2f} s")
    print(
        f"baseline, one file at a time (1 worker): {sequential:6.2f} s  ratio {ratio_sequential:4.1f}x"
    )
    print(
        f"baseline, gitlab-verify per package:     {one_by_one:6.2f} s  ratio {ratio_one_by_one:4.1f}x"
    )
    print(f"goal >= {GOAL_RATIO:.0f}x: {'met' if ratio_sequential >= GOAL_RATIO else 'NOT met'}")
    print(
        f"peak Python memory of --lock: {small:8.0f} KiB for 10 files, {large:8.0f} KiB for "
        f"{files} files ({large / small:.2f}x for {files / 10:.0f}x the files)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
