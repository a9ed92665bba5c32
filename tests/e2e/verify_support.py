"""Helpers for the gitlab-verify end-to-end tests: make a tiny release, sign it with the Sigstore
stand-in (the real sigstore-python client), publish it to the GitLab stand-in with plain httpx,
exactly where `gitlab-release` publishes (PyPI registry + generic registry).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx

from sandbox.gitlab import GitLabStandIn
from sandbox.sigstore import SigstoreStandIn

NAME = "hello-package"
VERSION = "0.1.0"
PROJECT_PATH = "demo-group/hello-package"
STEM = "hello_package"


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def make_wheel(directory: Path, *, name: str = NAME, version: str = VERSION) -> Path:
    """A minimal installable pure-Python wheel."""
    stem = name.replace("-", "_")
    dist_info = f"{stem}-{version}.dist-info"
    files = {
        f"{stem}/__init__.py": f'VERSION = "{version}"\n'.encode(),
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        ).encode(),
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in files.items())
    record += f"{dist_info}/RECORD,,\n"
    path = directory / f"{stem}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in files.items():
            archive.writestr(member, data)
        archive.writestr(f"{dist_info}/RECORD", record)
    return path


def make_sdist(directory: Path, *, name: str = NAME, version: str = VERSION) -> Path:
    stem = name.replace("-", "_")
    path = directory / f"{stem}-{version}.tar.gz"
    pkg_info = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo(f"{stem}-{version}/PKG-INFO")
        info.size = len(pkg_info)
        archive.addfile(info, io.BytesIO(pkg_info))
    return path


@dataclass
class SignedRelease:
    files: list[Path]
    bundles: dict[str, str] = field(default_factory=dict)  # file name -> .sigstore.json
    attestations: dict[str, str] = field(default_factory=dict)  # file name -> PEP 740 JSON
    detached: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (.sig, .crt)


def sign_release(
    sigstore: SigstoreStandIn,
    gitlab: GitLabStandIn,
    files: list[Path],
    *,
    project_path: str = PROJECT_PATH,
    ref: str = f"v{VERSION}",
    ref_type: str = "tag",
    ci_config_path: str = ".gitlab-ci.yml",
    attestations: bool = False,
    project_id: int | None = None,
) -> SignedRelease:
    """Sign every file as a GitLab CI job of `project_path` at `ref` would.

    The token carries the project's id and its namespace's id from the GitLab stand-in, as
    GitLab's do; `project_id` names another project than the one at that path now.
    """
    from cryptography.hazmat.primitives.serialization import Encoding
    from sigstore.hashes import Hashed
    from sigstore.models import ClientTrustConfig
    from sigstore.oidc import IdentityToken
    from sigstore.sign import SigningContext
    from sigstore_models.common.v1 import HashAlgorithm

    project = gitlab.scenario.project(project_id or project_path)
    token = sigstore.mint_token(
        project_path=project_path,
        project_id=project.id if project else (project_id or 1),
        namespace_id=project.namespace_id if project else None,
        ref=ref,
        ref_type=ref_type,
        ci_config_path=ci_config_path,
        server_url=gitlab.url,
    )
    context = SigningContext.from_trust_config(
        ClientTrustConfig.from_json(sigstore.trust_config_json())
    )
    release = SignedRelease(files=list(files))
    with context.signer(IdentityToken(token), cache=True) as signer:
        for path in files:
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                while block := handle.read(1 << 20):
                    digest.update(block)
            bundle = signer.sign_artifact(
                Hashed(digest=digest.digest(), algorithm=HashAlgorithm.SHA2_256)
            )
            release.bundles[path.name] = bundle.to_json()
            signature = base64.b64encode(bundle.signature).decode() + "\n"
            certificate = bundle.signing_certificate.public_bytes(Encoding.PEM).decode()
            release.detached[path.name] = (signature, certificate)
            if attestations:
                from pypi_attestations import Attestation, Distribution

                attestation = Attestation.sign(signer, Distribution.from_file(path))
                release.attestations[path.name] = attestation.model_dump_json()
    return release


def publish(
    gitlab: GitLabStandIn,
    release: SignedRelease,
    *,
    project: str | int = PROJECT_PATH,
    name: str = NAME,
    version: str = VERSION,
    bundles: bool = True,
    attestations: bool = False,
    detached: bool = False,
    skip_signatures_for: tuple[str, ...] = (),
) -> None:
    """PyPI upload of every file, and signature material to the generic registry."""
    project_id = project if isinstance(project, int) else gitlab.project_id(project)
    token = gitlab.tokens.personal
    with httpx.Client(timeout=30) as client:
        for path in release.files:
            response = client.post(
                f"{gitlab.api_url}/projects/{project_id}/packages/pypi",
                auth=("__token__", token),
                data={"name": name, "version": version, ":action": "file_upload"},
                files={"content": (path.name, path.read_bytes(), "application/octet-stream")},
            )
            assert response.status_code == 201, response.text
            if path.name in skip_signatures_for:
                continue
            sidecars: dict[str, str] = {}
            if bundles:
                sidecars[".sigstore.json"] = release.bundles[path.name]
            if attestations:
                sidecars[".publish.attestation"] = release.attestations[path.name]
            if detached:
                sidecars[".sig"], sidecars[".crt"] = release.detached[path.name]
            for suffix, content in sidecars.items():
                put_generic(gitlab, project_id, name, version, path.name + suffix, content.encode())


def put_generic(
    gitlab: GitLabStandIn, project_id: int, name: str, version: str, file_name: str, content: bytes
) -> None:
    url = (
        f"{gitlab.api_url}/projects/{project_id}/packages/generic/"
        f"{quote(name, safe='')}/{quote(version, safe='')}/{quote(file_name, safe='')}"
    )
    response = httpx.put(url, headers={"PRIVATE-TOKEN": gitlab.tokens.personal}, content=content)
    assert response.status_code == 201, response.text


def bundle_dict(release: SignedRelease, file_name: str) -> dict[str, object]:
    document: dict[str, object] = json.loads(release.bundles[file_name])
    return document


def rename_and_reregister(gitlab: GitLabStandIn, path: str, new_path: str) -> int:
    """Rename the project at `path` to `new_path`; a new project of the same group takes `path`.

    What GitLab does: the renamed project keeps its id, its packages and a redirect from the
    old path, and "new or updated routes override redirects with conflicting paths"
    (gitlab-org/gitlab-ce MR 11136; spec/features/projects/settings/
    user_renames_a_project_spec.rb "a new project is added with the same path overrides the
    redirect"). The stand-in's scenario is immutable, so both see a new one. Returns the new
    project's id.
    """
    from dataclasses import replace

    from sandbox.gitlab import Scenario

    scenario = gitlab.scenario
    old = scenario.project(path)
    assert old is not None, path
    new_id = max(scenario.projects) + 1
    renamed = replace(
        old,
        path=new_path.rsplit("/", 1)[-1],
        name=new_path.rsplit("/", 1)[-1],
        path_with_namespace=new_path,
    )
    newcomer = replace(old, id=new_id)
    projects = [p for p in scenario.projects.values() if p.id != old.id] + [renamed, newcomer]
    fresh = Scenario(
        scenario.groups.values(),
        projects,
        scenario.pipelines.values(),
        name=scenario.name,
        release_project_path=scenario.release_project_path,
    )
    gitlab.scenario = fresh
    gitlab.app.scenario = fresh
    return new_id


def pep740_attestations(
    sigstore: SigstoreStandIn, files: list[Path], *, project_path: str, ref: str
) -> dict[str, str]:
    """PEP 740 publish attestations (file name -> JSON) signed as a CI job of `project_path`
    at tag `ref` on `sigstore`'s issuer (https://gitlab.com for what PyPI accepts)."""
    from pypi_attestations import Attestation, Distribution
    from sigstore.models import ClientTrustConfig
    from sigstore.oidc import IdentityToken
    from sigstore.sign import SigningContext

    token = sigstore.mint_token(project_path=project_path, ref=ref)
    context = SigningContext.from_trust_config(
        ClientTrustConfig.from_json(sigstore.trust_config_json())
    )
    with context.signer(IdentityToken(token), cache=True) as signer:
        return {
            path.name: Attestation.sign(signer, Distribution.from_file(path)).model_dump_json()
            for path in files
        }


def trusted_publishing_token(pypi_url: str, id_token: str) -> str:
    """Exchange a GitLab ID token (audience `pypi`) for a short-lived PyPI upload token."""
    answer = httpx.post(f"{pypi_url}/_/oidc/mint-token", json={"token": id_token}, timeout=30)
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["token"]
    return token


def upload_to_pypi(
    upload_url: str,
    path: Path,
    token: str,
    *,
    name: str,
    version: str,
    attestation: str | None = None,
) -> None:
    """One file through the legacy upload API, with its PEP 740 attestation if given."""
    wheel = path.name.endswith(".whl")
    data = {
        ":action": "file_upload",
        "protocol_version": "1",
        "metadata_version": "2.1",
        "name": name,
        "version": version,
        "filetype": "bdist_wheel" if wheel else "sdist",
        "pyversion": "py3" if wheel else "source",
        "sha256_digest": hashlib.sha256(path.read_bytes()).hexdigest(),
    }
    if attestation is not None:
        data["attestations"] = json.dumps([json.loads(attestation)])
    response = httpx.post(
        upload_url,
        data=data,
        files={"content": (path.name, path.read_bytes(), "application/octet-stream")},
        auth=("__token__", token),
        timeout=30,
    )
    assert response.status_code == 200, response.text
