"""The README demo: the main job, for real, on the local stand-ins.

Starts the GitLab, Sigstore and PyPI stand-ins, copies examples/hello-package to a temporary
directory and runs, through the real `poetry` executable with the plugin installed:
  1. `poetry gitlab-release --to gitlab,pypi` as a gitlab.com tag pipeline's release job would
     (CI variables, job token, SIGSTORE_ID_TOKEN and PYPI_ID_TOKEN from id_tokens): build,
     sign, verify, publish to GitLab's registries, then to the PyPI stand-in with PEP 740
     attestations through Trusted Publishing; then the tag's Release page (with the signed
     SBOM among its links), which the demo reads back from the Releases API;
  2. `poetry gitlab-verify` as a consumer would, with a personal access token;
  3. `pypi-attestations verify pypi` on the provenance the PyPI stand-in serves;
  4. `poetry gitlab-pipelines` for the demo group.
The job speaks as gitlab.com (ID tokens and certificates name https://gitlab.com, which PyPI's
Trusted Publishing requires) while its API calls go to the GitLab stand-in. Each command line
is printed before it runs; the demo stops at the first failure.
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
from sandbox.pypi import GITLAB_ISSUER, PyPIStandIn, TrustedPublisher
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


def _verify_pypi_provenance(
    pypi: PyPIStandIn, sigstore: SigstoreStandIn, home: Path, base: dict[str, str]
) -> None:
    """pip downloads the wheel from the PyPI stand-in; pypi-attestations verifies its provenance.

    The CLI trusts sigstore-python's "production" root, which, offline, is the file in its cache
    directory: the Sigstore stand-in's root is put there (a throw-away XDG_CACHE_HOME).
    """
    import urllib.request
    from urllib.parse import quote

    downloads = home / "pypi-downloads"
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet"]
    command += ["--index-url", pypi.simple_url, "--dest", str(downloads)]
    print(f"\n=== PyPI provenance\n$ pip download hello-package=={VERSION} (PyPI stand-in)")
    subprocess.run([*command, f"hello-package=={VERSION}"], env=base, check=True)
    (wheel,) = downloads.glob("*.whl")
    url = pypi.provenance_url("hello-package", VERSION, wheel.name)
    provenance = home / "provenance.json"
    with urllib.request.urlopen(url, timeout=30) as response:
        provenance.write_bytes(response.read())
    cache = home / "pypi-verify-cache"
    tuf = cache / "sigstore-python" / "tuf" / quote("https://tuf-repo-cdn.sigstore.dev", safe="")
    tuf.mkdir(parents=True)
    (tuf / "trusted_root.json").write_text(sigstore.trusted_root_json(), encoding="utf-8")
    repository = f"https://gitlab.com/{RELEASE_PROJECT}"
    print(f"$ pypi-attestations verify pypi --repository {repository} {wheel.name}")
    result = subprocess.run(
        [str(POETRY.with_name("pypi-attestations")), "verify", "pypi", "--offline",
         "--provenance-file", str(provenance), "--repository", repository, str(wheel)],
        env={**base, "XDG_CACHE_HOME": str(cache)},
        check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"demo: pypi-attestations exited with {result.returncode}")


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
            SigstoreStandIn(issuer=GITLAB_ISSUER, state_dir=home / "sigstore") as sigstore,
            PyPIStandIn.trusting(
                sigstore, TrustedPublisher("hello-package", RELEASE_PROJECT)
            ) as pypi,
        ):
            print(
                f"GitLab stand-in:   {gitlab.url}\nSigstore stand-in: {sigstore.url}\n"
                f"PyPI stand-in:     {pypi.url} (trusting {RELEASE_PROJECT} .gitlab-ci.yml)"
            )
            project = home / "hello-package"
            shutil.copytree(
                EXAMPLE, project, ignore=shutil.ignore_patterns(".venv", "dist", "__pycache__")
            )
            base = _isolated_environment(home)
            release_env = release_job_environment(
                gitlab, sigstore, ref=f"v{VERSION}", identity_server=GITLAB_ISSUER
            )
            job = {**base, **release_env, "GITLAB_RELEASE_PYPI_URL": pypi.upload_url}
            _run(
                "release job (tag pipeline)",
                ["gitlab-release", "--to", "gitlab,pypi"],
                cwd=project,
                env=job,
            )
            _show_release_page(gitlab, f"v{VERSION}")
            consumer = {
                **base,
                "GITLAB_HOST": gitlab.url,
                "GITLAB_TOKEN": gitlab.tokens.read_api,
                # The signer is the gitlab.com job: say so, as a consumer of a gitlab.com project
                # whose API is reached elsewhere would.
                "GITLAB_RELEASE_ISSUER": release_env["GITLAB_RELEASE_ISSUER"],
                "GITLAB_RELEASE_IDENTITY": release_env["GITLAB_RELEASE_IDENTITY"],
            }
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
            _verify_pypi_provenance(pypi, sigstore, home, base)
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
            print(
                "\ndemo: release published to GitLab and PyPI, verified as a consumer, PyPI "
                "provenance verified, pipelines shown"
            )
        return 0
    finally:
        if args.keep:
            print(f"demo files kept in {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
