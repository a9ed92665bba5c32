"""`python -m sandbox`: the stand-ins, consistent with each other, until Ctrl-C.

Prints the environment of a release job (export lines) and a personal token for the consumer
and dashboard commands. The PyPI stand-in trusts the job's GitLab ID tokens (PYPI_ID_TOKEN);
its attestation check (pypi-attestations' GitLab policy) accepts only gitlab.com signers, so
with `--gitlab-com` the job's tokens and certificates speak as https://gitlab.com.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import tempfile
import threading
from pathlib import Path

from sandbox.environment import RELEASE_PROJECT, release_job_environment
from sandbox.gitlab import GitLabStandIn, Scenario
from sandbox.pypi import PyPIStandIn, TrustedPublisher
from sandbox.sigstore import SigstoreStandIn

READY_LINE = "# stand-ins ready (Ctrl-C stops them)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--gitlab-port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--sigstore-port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--ref", default="v0.1.0", help="tag (or branch with --branch) of the job")
    parser.add_argument(
        "--branch", action="store_true", help="the job runs for a branch, not a tag"
    )
    parser.add_argument(
        "--state-dir", type=Path, default=None, help="where the trust config is written"
    )
    parser.add_argument("--pypi-port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--gitlab-com",
        action="store_true",
        help="ID tokens and certificates name https://gitlab.com (what PyPI attestations need)",
    )
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    state_dir = args.state_dir or Path(tempfile.mkdtemp(prefix="sandbox-"))
    identity_server = "https://gitlab.com" if args.gitlab_com else None
    with (
        GitLabStandIn(Scenario.default(), port=args.gitlab_port) as gitlab,
        SigstoreStandIn(
            port=args.sigstore_port, issuer=identity_server or gitlab.url, state_dir=state_dir
        ) as sigstore,
        PyPIStandIn.trusting(
            sigstore, TrustedPublisher("hello-package", RELEASE_PROJECT), port=args.pypi_port
        ) as pypi,
    ):
        environment = release_job_environment(
            gitlab,
            sigstore,
            ref=args.ref,
            ref_type="branch" if args.branch else "tag",
            token_lifetime=3600,
            identity_server=identity_server,
        )
        environment["GITLAB_RELEASE_PYPI_URL"] = pypi.upload_url
        print(f"# release job of {RELEASE_PROJECT} on the stand-ins")
        print(f"# PyPI stand-in: {pypi.url} (simple index {pypi.simple_url})")
        for name in sorted(environment):
            print(f"export {name}={shlex.quote(environment[name])}")
        print("# a personal access token (api scope) for gitlab-verify and gitlab-pipelines:")
        print(f"export GITLAB_TOKEN={shlex.quote(gitlab.tokens.personal)}")
        print(READY_LINE, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0
