"""The README demo: the main job, for real, on the local stand-ins.

Starts the GitLab and Sigstore stand-ins, copies examples/hello-package to a temporary
directory and runs, through the real `poetry` executable with the plugin installed:
  1. `poetry gitlab-release` as a tag pipeline's release job would (CI variables, job token,
     SIGSTORE_ID_TOKEN from id_tokens): build (with the SBOM), sign, verify, publish, and the
     tag's Release page, which the demo then reads back from the Releases API;
  2. `poetry gitlab-verify` as a consumer would, with a personal access token;
  3. `poetry gitlab-pipelines` for the demo group.
Each command line is printed before it runs; the demo stops at the first failure.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from sandbox.environment import RELEASE_PROJECT, release_job_environment
from sandbox.gitlab import GitLabStandIn, Scenario
from sandbox.sigstore import SigstoreStandIn

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "hello-package"
POETRY = Path(sys.executable).with_name("poetry")
VERSION = "0.1.0"


def _isolated_environment(home: Path) -> dict[str, str]:
    keep = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CI_", "GITLAB_", "POETRY_"))
    }
    keep.update(
        {
            "POETRY_CONFIG_DIR": str(home / "poetry-config"),
            "POETRY_CACHE_DIR": str(home / "poetry-cache"),
            "POETRY_KEYRING_ENABLED": "false",
            "XDG_CACHE_HOME": str(home / "xdg-cache"),
            "XDG_DATA_HOME": str(home / "xdg-data"),
            "SOURCE_DATE_EPOCH": "1700000000",
        }
    )
    return keep


def _run(
    title: str, args: list[str], *, cwd: Path, env: dict[str, str], accept: tuple[int, ...] = (0,)
) -> int:
    print(f"\n=== {title}\n$ poetry {shlex.join(args)}", flush=True)
    result = subprocess.run([str(POETRY), *args], cwd=cwd, env=env, check=False)
    if result.returncode not in accept:
        raise SystemExit(f"demo: `poetry {args[0]}` exited with {result.returncode}")
    return result.returncode


def _show_release_page(gitlab: GitLabStandIn, tag: str) -> None:
    """The Release page the job created, as GitLab's Releases API returns it."""
    import json
    import urllib.parse
    import urllib.request

    project = urllib.parse.quote(RELEASE_PROJECT, safe="")
    url = f"{gitlab.api_url}/projects/{project}/releases/{tag}"
    print(f"\n=== the Release page\n$ GET {url}", flush=True)
    request = urllib.request.Request(url, headers={"PRIVATE-TOKEN": gitlab.tokens.read_api})
    with urllib.request.urlopen(request, timeout=30) as response:
        release = json.load(response)
    print(f"{release['name']}: {release['_links']['self']}")
    for link in sorted(release["assets"]["links"], key=lambda item: item["id"]):
        print(f"  [{link['link_type']}] {link['name']}\n      {link['direct_asset_url']}")
    print("notes:\n  " + "\n  ".join(release["description"].splitlines()))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox demo", description=__doc__)
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory and print its path"
    )
    args = parser.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="poetry-gitlab-release-demo-"))
    try:
        with (
            GitLabStandIn(Scenario.default()) as gitlab,
            SigstoreStandIn(issuer=gitlab.url, state_dir=home / "sigstore") as sigstore,
        ):
            print(f"GitLab stand-in:   {gitlab.url}\nSigstore stand-in: {sigstore.url}")
            project = home / "hello-package"
            shutil.copytree(
                EXAMPLE, project, ignore=shutil.ignore_patterns(".venv", "dist", "__pycache__")
            )
            base = _isolated_environment(home)
            job = {**base, **release_job_environment(gitlab, sigstore, ref=f"v{VERSION}")}
            _run("release job (tag pipeline)", ["gitlab-release"], cwd=project, env=job)
            _show_release_page(gitlab, f"v{VERSION}")
            consumer = {**base, "GITLAB_HOST": gitlab.url, "GITLAB_TOKEN": gitlab.tokens.read_api}
            _run(
                "consumer verification",
                [
                    "gitlab-verify",
                    f"hello-package=={VERSION}",
                    "--gitlab-project",
                    RELEASE_PROJECT,
                    "--trust-config",
                    str(sigstore.trust_config_path),
                    "--dest",
                    str(home / "verified"),
                ],
                cwd=home,
                env=consumer,
            )
            # The demo group holds a failed and a running pipeline on purpose; the dashboard's exit
            # code (1: a pipeline failed, 3: some not finished) is what a gating job would act on.
            code = _run(
                "group pipelines",
                ["gitlab-pipelines", "--group", "demo-group"],
                cwd=home,
                env=consumer,
                accept=(0, 1, 3),
            )
            print(f"(gitlab-pipelines exited with {code}, as a job gating on this group would see)")
            print("\ndemo: release published, verified as a consumer, pipelines shown")
        return 0
    finally:
        if args.keep:
            print(f"demo files kept in {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
