"""`python -m sandbox sigstore`: serve the stand-in and print a CI job's environment.

The output is shell-sourceable `export NAME=value` lines (or one JSON object with
`--format json`): the GitLab CI variables consistent with a freshly minted
`SIGSTORE_ID_TOKEN`, plus `SIGSTORE_TRUST_CONFIG` (the ClientTrustConfig path for
`sigstore --trust-config`) and `SIGSTORE_STANDIN_URL`. The last line is
`# sigstore stand-in ready` (JSON mode: the object is a single line); then it serves
until interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from sandbox.sigstore import SigstoreStandIn

READY_LINE = "# sigstore stand-in ready"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sandbox sigstore", description=__doc__)
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free port)")
    p.add_argument("--issuer", default="https://gitlab.com", help="token `iss` (GitLab URL)")
    p.add_argument("--state-dir", type=Path, default=None, help="where the trust config goes")
    p.add_argument("--project-path", default="demo-group/hello-package")
    p.add_argument("--project-id", type=int, default=1001)
    p.add_argument("--ref", default="v1.0.0")
    p.add_argument("--ref-type", choices=["branch", "tag"], default="tag")
    p.add_argument("--ci-config-path", default=".gitlab-ci.yml")
    p.add_argument("--server-url", default=None, help="GitLab URL in ci_config_ref_uri")
    p.add_argument("--lifetime", type=int, default=3600, help="token lifetime in seconds")
    p.add_argument("--format", choices=["env", "json"], default="env")
    p.add_argument(
        "--no-serve", action="store_true", help="print and exit (the token is then unusable)"
    )
    return p


def job_environment(standin: SigstoreStandIn, token: str) -> dict[str, str]:
    env = standin.ci_environment(token)
    env["SIGSTORE_TRUST_CONFIG"] = str(standin.trust_config_path)
    env["SIGSTORE_STANDIN_URL"] = standin.url
    env["SIGSTORE_IDENTITY"] = standin.expected_identity(token)
    env["SIGSTORE_OIDC_ISSUER"] = standin.issuer
    return env


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    with SigstoreStandIn(port=args.port, issuer=args.issuer, state_dir=args.state_dir) as standin:
        token = standin.mint_token(
            project_path=args.project_path,
            project_id=args.project_id,
            ref=args.ref,
            ref_type=args.ref_type,
            ci_config_path=args.ci_config_path,
            server_url=args.server_url,
            lifetime=args.lifetime,
        )
        env = job_environment(standin, token)
        if args.format == "json":
            print(json.dumps(env, sort_keys=True), flush=True)
        else:
            for name in sorted(env):
                print(f"export {name}={shlex.quote(env[name])}")
            print(READY_LINE, flush=True)
        if args.no_serve:
            return 0
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, _on_signal)
            signal.signal(signal.SIGTERM, _on_signal)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    print("sigstore stand-in stopped", file=sys.stderr)
    return 0
