"""`python -m sandbox pypi`: a PyPI stand-in (and the Sigstore stand-in it trusts) until Ctrl-C.

Prints shell `export` lines: the stand-in's URLs, a GitLab CI job's `PYPI_ID_TOKEN` (audience
`pypi`) and `SIGSTORE_ID_TOKEN` as gitlab.com would issue them for the configured trusted
publisher, and the Sigstore trust config to sign with; then `# pypi stand-in ready`.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import threading
from pathlib import Path

from sandbox.pypi import GITLAB_ISSUER, PyPIStandIn, TrustedPublisher
from sandbox.sigstore import SigstoreStandIn

READY_LINE = "# pypi stand-in ready (Ctrl-C stops it)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sandbox pypi", description=__doc__)
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free port)")
    p.add_argument("--project", default="hello-package", help="the PyPI project")
    p.add_argument("--repository", default="demo-group/hello-package", help="GitLab project")
    p.add_argument("--workflow", default=".gitlab-ci.yml", help="the trusted CI file")
    p.add_argument("--environment", default="", help="the trusted environment (any if empty)")
    p.add_argument("--ref", default="v0.1.0", help="the tag the job runs for")
    p.add_argument("--state-dir", type=Path, default=None, help="where the trust config goes")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    publisher = TrustedPublisher(args.project, args.repository, args.workflow, args.environment)
    with (
        SigstoreStandIn(issuer=GITLAB_ISSUER, state_dir=args.state_dir) as sigstore,
        PyPIStandIn.trusting(sigstore, publisher, port=args.port) as pypi,
    ):
        extra = {"environment": args.environment} if args.environment else {}

        def mint(audience: str) -> str:
            return sigstore.mint_token(
                project_path=args.repository,
                ref=args.ref,
                ci_config_path=args.workflow,
                audience=audience,
                lifetime=3600,
                **extra,
            )

        environment = {
            "PYPI_STANDIN_URL": pypi.url,
            "GITLAB_RELEASE_PYPI_URL": pypi.upload_url,
            "PYPI_ID_TOKEN": mint("pypi"),
            "SIGSTORE_ID_TOKEN": mint("sigstore"),
            "GITLAB_RELEASE_TRUST_CONFIG": str(sigstore.trust_config_path),
        }
        print(f"# PyPI stand-in trusting {publisher.repository} {publisher.workflow_filepath}")
        for name in sorted(environment):
            print(f"export {name}={shlex.quote(environment[name])}")
        print(READY_LINE, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0
