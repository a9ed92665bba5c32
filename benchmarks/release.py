"""Release benchmarks, against the local stand-ins, baseline and candidate in the same run.

1. Signing 10 artifacts: requests to Fulcio and wall time, `sign_artifacts` (one signer, one
   certificate) against the baseline of one signer per artifact (a certificate each).
2. Peak memory while verifying and publishing one 300 MB artifact, measured in a child process
   (the stand-ins, which keep uploads in memory, run in this one): the peak resident set above
   the child's baseline after imports. Goal: under 100 MB.

    python benchmarks/release.py [--artifacts 10] [--size-mb 300]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

PROJECT_ID = 100
PROJECT_PATH = "demo-group/hello-package"
VERSION = "1.0.0"
GOAL_MB = 100


def _rss_mb() -> float:
    """Current resident set size (Linux /proc), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _write_wheel(path: Path, payload_mb: int) -> None:
    """A valid wheel holding `payload_mb` MB of incompressible data, written in chunks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = f"Metadata-Version: 2.4\nName: big-pkg\nVersion: {VERSION}\nSummary: big\n"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(f"big_pkg-{VERSION}.dist-info/METADATA", metadata)
        with archive.open("big_pkg/data.bin", "w", force_zip64=True) as member:
            for _ in range(payload_mb):
                member.write(os.urandom(1 << 20))


def bench_signing(count: int) -> None:
    from sigstore.oidc import IdentityToken
    from sigstore.sign import SigningContext

    from poetry_gitlab_release.config.credentials import Secret
    from poetry_gitlab_release.release.artifacts import load_artifacts
    from poetry_gitlab_release.release.sign import sign_artifacts
    from poetry_gitlab_release.signing.material import hashed
    from poetry_gitlab_release.signing.trust import load_trust_config
    from sandbox.sigstore import SigstoreStandIn

    with tempfile.TemporaryDirectory() as scratch, SigstoreStandIn() as standin:
        dist = Path(scratch)
        for index in range(count):
            (dist / f"bench_pkg-{VERSION}-py3-none-any{index}.whl").write_bytes(os.urandom(1 << 20))
        # Names as a glob of wheels sees them.
        artifacts = load_artifacts(dist, "bench-pkg", VERSION)
        assert len(artifacts) == count, len(artifacts)
        trust = load_trust_config(standin.trust_config_path)
        token = standin.mint_token(project_path=PROJECT_PATH)

        before = standin.fulcio_requests
        start = time.perf_counter()
        context = SigningContext.from_trust_config(trust)
        for artifact in artifacts:
            with context.signer(IdentityToken(token), cache=True) as signer:
                signer.sign_artifact(hashed(artifact.sha256))
        baseline_time = time.perf_counter() - start
        baseline_fulcio = standin.fulcio_requests - before

        before = standin.fulcio_requests
        start = time.perf_counter()
        sign_artifacts(artifacts, Secret(token), trust_config=trust, in_ci=True, attestations=False)
        ours_time = time.perf_counter() - start
        ours_fulcio = standin.fulcio_requests - before

        before = standin.fulcio_requests
        start = time.perf_counter()
        sign_artifacts(artifacts, Secret(token), trust_config=trust, in_ci=True, attestations=True)
        full_time = time.perf_counter() - start
        full_fulcio = standin.fulcio_requests - before

    print(f"signing {count} artifacts (1 MB each) against the Sigstore stand-in")
    print(
        f"  baseline, one signer per artifact : Fulcio requests {baseline_fulcio:3d}  "
        f"wall {baseline_time:6.2f} s"
    )
    print(
        f"  sign_artifacts, one signer        : Fulcio requests {ours_fulcio:3d}  "
        f"wall {ours_time:6.2f} s  ({baseline_time / ours_time:.1f}x faster)"
    )
    print(
        f"  sign_artifacts + PEP 740          : Fulcio requests {full_fulcio:3d}  "
        f"wall {full_time:6.2f} s"
    )
    if ours_fulcio != 1:
        raise SystemExit(f"FAIL: {ours_fulcio} Fulcio requests, expected 1")


def child(config: dict[str, str]) -> None:
    """Runs in a fresh process: verify, then publish, the big artifact; prints memory figures."""
    from poetry_gitlab_release.config.settings import resolve_settings
    from poetry_gitlab_release.gitlab.client import GitLabClient
    from poetry_gitlab_release.gitlab.connection import Connection
    from poetry_gitlab_release.release.artifacts import load_artifacts
    from poetry_gitlab_release.release.publish import PublishTarget, publish_release
    from poetry_gitlab_release.release.verify import verify_artifacts
    from poetry_gitlab_release.signing.identity import ExpectedIdentity
    from poetry_gitlab_release.signing.trust import load_trust_config

    dist = Path(config["dist"])
    settings = resolve_settings(
        {"host": config["host"], "token": config["token"], "project": PROJECT_PATH}, {}
    )
    expected = ExpectedIdentity.for_gitlab(
        server_url=config["issuer"], project_path=PROJECT_PATH, ref="refs/tags/v1.0.0"
    )
    trust = load_trust_config(Path(config["trust"]))
    client = GitLabClient(Connection.from_settings(settings), timeout=300)
    import httpx  # noqa: F401 - loaded before the baseline, like the rest of the code path
    import sigstore.verify  # noqa: F401

    baseline = _rss_mb()
    artifacts = load_artifacts(dist, "big-pkg", VERSION)
    verify_artifacts(artifacts, expected, trust_config=trust)
    after_verify = _peak_mb()
    result = publish_release(
        client,
        PublishTarget(PROJECT_PATH, "big-pkg", VERSION),
        artifacts,
        api_url=settings.api_url,
        check_signature=lambda *args: None,
    )
    client.close()
    statuses = sorted({item.status for item in result.files})
    print(
        json.dumps(
            {
                "baseline_mb": baseline,
                "peak_after_verify_mb": after_verify,
                "peak_mb": _peak_mb(),
                "statuses": statuses,
                "size_mb": artifacts[0].size / (1 << 20),
            }
        )
    )


def bench_memory(size_mb: int) -> None:
    from poetry_gitlab_release.config.credentials import Secret
    from poetry_gitlab_release.release.artifacts import load_artifacts
    from poetry_gitlab_release.release.sign import sign_artifacts
    from poetry_gitlab_release.signing.trust import load_trust_config
    from sandbox.gitlab import GitLabStandIn
    from sandbox.sigstore import SigstoreStandIn

    with (
        tempfile.TemporaryDirectory() as scratch,
        GitLabStandIn() as gitlab,
        SigstoreStandIn(issuer=gitlab.url) as standin,
    ):
        dist = Path(scratch) / "dist"
        _write_wheel(dist / f"big_pkg-{VERSION}-py3-none-any.whl", size_mb)
        artifacts = load_artifacts(dist, "big-pkg", VERSION)
        token = standin.mint_token(
            project_path=PROJECT_PATH, project_id=PROJECT_ID, server_url=gitlab.url
        )
        sign_artifacts(
            artifacts,
            Secret(token),
            trust_config=load_trust_config(standin.trust_config_path),
            in_ci=True,
        )
        config = {
            "dist": str(dist),
            "host": gitlab.url,
            "token": gitlab.tokens.personal,
            "issuer": gitlab.url,
            "trust": str(standin.trust_config_path),
        }
        start = time.perf_counter()
        output = subprocess.run(
            [sys.executable, __file__, "--child", json.dumps(config)],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        )
        elapsed = time.perf_counter() - start
        if output.returncode != 0:
            raise SystemExit(f"FAIL: child exited {output.returncode}: {output.stderr[-2000:]}")
        figures = json.loads(output.stdout.strip().splitlines()[-1])
        stored = [f for f in gitlab.stored_files(PROJECT_ID) if f.package_type == "pypi"]
        assert stored and stored[0].sha256 == artifacts[0].sha256, "upload corrupted"

    above = figures["peak_mb"] - figures["baseline_mb"]
    verify_above = figures["peak_after_verify_mb"] - figures["baseline_mb"]
    print(
        f"verify + publish one {figures['size_mb']:.0f} MB artifact (child process, {elapsed:.1f} s)"
    )
    print(f"  baseline RSS after imports        : {figures['baseline_mb']:7.1f} MB")
    print(
        f"  peak while verifying              : {figures['peak_after_verify_mb']:7.1f} MB "
        f"(+{verify_above:.1f} MB)"
    )
    print(
        f"  peak while verifying + publishing : {figures['peak_mb']:7.1f} MB "
        f"(+{above:.1f} MB; goal < +{GOAL_MB} MB: {'met' if above < GOAL_MB else 'NOT met'})"
    )
    print(f"  upload statuses                   : {', '.join(figures['statuses'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=int, default=10)
    parser.add_argument("--size-mb", type=int, default=300)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    with tempfile.TemporaryDirectory() as xdg:
        os.environ.setdefault("XDG_CACHE_HOME", xdg)
        os.environ.setdefault("XDG_DATA_HOME", xdg)
        bench_signing(args.artifacts)
        print()
        bench_memory(args.size_mb)


if __name__ == "__main__":
    main()
