"""The PyPI stand-in against real clients: twine, uv, pip and pypi-attestations' CLI."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import trustme

from sandbox.pypi import PyPIStandIn
from sandbox.sigstore import SigstoreStandIn
from tests.sandbox.gitlab.dists import make_sdist, make_wheel

BIN = Path(sys.executable).parent
REPOSITORY = "https://gitlab.com/demo-group/hello-package"


def mint_upload_token(pypi: PyPIStandIn, id_token: str) -> str:
    audience = httpx.get(f"{pypi.url}/_/oidc/audience").json()["audience"]
    assert audience == "pypi"
    answer = httpx.post(f"{pypi.url}/_/oidc/mint-token", json={"token": id_token})
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["token"]
    return token


def run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )


def production_root_shadowed_by(sigstore: SigstoreStandIn, home: Path) -> dict[str, str]:
    """XDG dirs in which sigstore-python's offline "production" trusted root is `sigstore`'s.

    sigstore-python's TrustUpdater (offline) copies its embedded production root into
    `$XDG_CACHE_HOME/sigstore-python/tuf/<url>/` only when no file is there yet, then uses that
    file (sigstore/_internal/tuf.py): the unmodified CLI then trusts the stand-in.
    """
    target = home / "cache" / "sigstore-python" / "tuf"
    target = target / quote("https://tuf-repo-cdn.sigstore.dev", safe="")
    target.mkdir(parents=True)
    (target / "trusted_root.json").write_text(sigstore.trusted_root_json(), encoding="utf-8")
    return {"XDG_CACHE_HOME": str(home / "cache"), "XDG_DATA_HOME": str(home / "data")}


@pytest.mark.slow
def test_twine_uploads_attestations_pip_downloads_and_the_cli_verifies_provenance(
    pypi_standin: PyPIStandIn,
    sigstore_standin: SigstoreStandIn,
    pypi_id_token: Callable[..., str],
    pep740_signer: Callable[..., list[Path]],
    tmp_path: Path,
) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    wheel, sdist = make_wheel(dist), make_sdist(dist)
    attestations = pep740_signer(wheel, sdist)
    token = mint_upload_token(pypi_standin, pypi_id_token())
    twine: list[str | Path] = [BIN / "twine", "upload", "--non-interactive", "--attestations"]
    twine += ["--repository-url", pypi_standin.upload_url, "-u", "__token__", "-p", token]
    first = run(*twine, wheel, sdist, *attestations)
    assert first.returncode == 0, first.stdout + first.stderr
    stored = {f.filename: f for f in pypi_standin.files("hello-package")}
    assert set(stored) == {wheel.name, sdist.name}
    assert all(f.provenance is not None for f in stored.values())

    again = run(*twine, wheel, sdist, *attestations)  # identical files: a no-op, as on PyPI
    assert again.returncode == 0, again.stdout + again.stderr
    assert pypi_standin.uploads == 2

    downloads = tmp_path / "downloads"
    pip = run(
        sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
        "--index-url", pypi_standin.simple_url, "--dest", downloads, "hello-package==0.1.0",
    )  # fmt: skip
    assert pip.returncode == 0, pip.stdout + pip.stderr
    downloaded = downloads / wheel.name
    assert downloaded.read_bytes() == wheel.read_bytes()

    provenance = httpx.get(
        pypi_standin.provenance_url("hello-package", "0.1.0", wheel.name),
        headers={"Accept": "application/vnd.pypi.integrity.v1+json"},
    )
    assert provenance.status_code == 200
    provenance_file = tmp_path / "provenance.json"
    provenance_file.write_bytes(provenance.content)
    env = production_root_shadowed_by(sigstore_standin, tmp_path / "xdg")
    verify: list[str | Path] = [BIN / "pypi-attestations", "verify", "pypi", "--offline"]
    verify += ["--provenance-file", provenance_file]
    ok = run(*verify, "--repository", REPOSITORY, downloaded, env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"OK: {wheel.name}" in ok.stdout + ok.stderr
    wrong = run(*verify, "--repository", f"{REPOSITORY}-fork", downloaded, env=env)
    assert wrong.returncode != 0
    assert "hello-package-fork" in wrong.stdout + wrong.stderr


@pytest.mark.slow
def test_uv_publish_exchanges_the_gitlab_token_and_uploads_attestations(
    pypi_standin_factory: Callable[..., PyPIStandIn],
    pypi_id_token: Callable[..., str],
    pep740_signer: Callable[..., list[Path]],
    tmp_path: Path,
) -> None:
    # uv asks https://{host}/_/oidc/audience whatever the publish URL's scheme: serve HTTPS.
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    pypi = pypi_standin_factory(tls_context=context)
    dist = tmp_path / "dist"
    dist.mkdir()
    wheel = make_wheel(dist)
    pep740_signer(wheel)
    env = {
        "GITLAB_CI": "true",
        "PYPI_ID_TOKEN": pypi_id_token(),
        "SSL_CERT_FILE": str(ca_file),
        "UV_CACHE_DIR": str(tmp_path / "uv-cache"),
    }
    publish: list[str | Path] = [BIN / "uv", "publish", "--trusted-publishing", "always"]
    uv = run(*publish, "--publish-url", pypi.upload_url, dist / "*", env=env)
    assert uv.returncode == 0, uv.stdout + uv.stderr
    assert pypi.exchanges == 1
    (stored,) = pypi.files("hello-package")
    assert stored.provenance is not None

    reused = run(*publish, "--publish-url", pypi.upload_url, dist / "*", env=env)
    assert reused.returncode != 0  # each GitLab ID token can be exchanged once
    assert "invalid-reuse-token" in reused.stdout + reused.stderr
