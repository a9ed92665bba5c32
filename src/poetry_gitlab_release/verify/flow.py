"""The consumer flow: resolve -> download (sha256 checked) -> fetch signature material ->
verify each file against the expected identity -> report.

Two sources of files:
  registry  `name==version` (or `name`, the latest final release) from a project's or a group's
            PyPI simple index; signature material from the owning project's generic registry.
  local     files on disk; material beside them, in a bundle directory, or given explicitly.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from poetry_gitlab_release.errors import ConfigError, UsageError, VerificationError
from poetry_gitlab_release.gitlab.simple_index import normalize_name
from poetry_gitlab_release.signing.check import verify_file
from poetry_gitlab_release.signing.claims import ClaimPolicy
from poetry_gitlab_release.signing.identity import ExpectedIdentity, expected_identity, git_ref
from poetry_gitlab_release.signing.material import MaterialKind, SignatureMaterial
from poetry_gitlab_release.signing.results import FileResult, Verdict
from poetry_gitlab_release.verify.report import Report

if TYPE_CHECKING:
    from sigstore.verify import Verifier

    from poetry_gitlab_release.config.settings import Settings
    from poetry_gitlab_release.gitlab.client import GitLabClient
    from poetry_gitlab_release.gitlab.connection import Connection
    from poetry_gitlab_release.verify.pins import Pin, PinStore

Progress = Callable[[str], None]

# The SBOM gitlab-release publishes beside the signatures (its release/sbom.py).
SBOM_SUFFIX = ".cdx.json"
SBOM_MAX_BYTES = 16 << 20
_REQUIREMENT = re.compile(r"^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)(?:\s*==\s*(\S+))?$")


@dataclass(frozen=True)
class Requirement:
    name: str
    version: str | None

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}=={self.version}"


def parse_requirement(text: str) -> Requirement:
    match = _REQUIREMENT.match(text.strip())
    if not match:
        raise UsageError(
            f"{text!r} is neither `name==version`, `name`, nor an existing file",
            hint="give a requirement such as hello-package==1.0.0, or paths to files",
        )
    return Requirement(match.group(1), match.group(2))


@dataclass(frozen=True)
class IdentityOptions:
    """The command-line overrides of the default identity."""

    identity: str | None = None
    issuer: str | None = None
    ref: str | None = None
    ref_regex: str | None = None
    ci_config: str = ".gitlab-ci.yml"


def normalize_ref(ref: str) -> str:
    """`refs/...` as given; anything else is a tag name."""
    return git_ref(tag=ref)


def signer_from_options(
    options: IdentityOptions, *, server_url: str, project_path: str | None, version: str | None
) -> ExpectedIdentity:
    """By default `https://{host}/{project}//.gitlab-ci.yml@refs/tags/v{version}`, issuer host."""
    ref = normalize_ref(options.ref) if options.ref else None
    if ref is None and version is not None and not (options.identity or options.ref_regex):
        ref = f"refs/tags/v{version}"
    return expected_identity(
        server_url=server_url,
        # An explicit --identity may name any signer, so it pins no source repository.
        project_path=None if options.identity else project_path,
        ref=ref,
        issuer=options.issuer,
        identity=options.identity,
        ref_regex=options.ref_regex,
        ci_config_path=options.ci_config,
        no_ref_hint="pass --ref (e.g. refs/tags/v1.0.0), --ref-regex, or --identity",
    )


# --- local files -----------------------------------------------------------------------------


def local_material(
    path: Path, *, bundle_dir: Path | None, bundle: Path | None
) -> SignatureMaterial | None:
    """The first material found: --bundle, then the bundle dir, then beside the file."""
    if bundle is not None:
        kind = (
            MaterialKind.ATTESTATION
            if bundle.name.endswith(MaterialKind.ATTESTATION.value)
            else MaterialKind.BUNDLE
        )
        return SignatureMaterial(kind, _read_bounded(bundle), str(bundle))
    directories = [d for d in (bundle_dir, path.parent) if d is not None]
    for directory in directories:
        for kind in (MaterialKind.BUNDLE, MaterialKind.ATTESTATION):
            candidate = directory / (path.name + kind.value)
            if candidate.is_file():
                return SignatureMaterial(kind, _read_bounded(candidate), str(candidate))
    for directory in directories:
        sig, crt = directory / (path.name + ".sig"), directory / (path.name + ".crt")
        if sig.is_file() and crt.is_file():
            return SignatureMaterial(
                MaterialKind.DETACHED, _read_bounded(sig), str(sig), certificate=_read_bounded(crt)
            )
    return None


def _read_bounded(path: Path) -> bytes:
    from poetry_gitlab_release.gitlab.downloads import MAX_SIGNATURE_BYTES

    with path.open("rb") as handle:
        data = handle.read(MAX_SIGNATURE_BYTES + 1)
    if len(data) > MAX_SIGNATURE_BYTES:
        raise VerificationError(f"{path}: larger than {MAX_SIGNATURE_BYTES} bytes, not a bundle")
    return data


def verify_local(
    paths: Sequence[Path],
    *,
    verifier: Verifier,
    expected: ExpectedIdentity,
    bundle_dir: Path | None,
    bundle: Path | None,
    online_log: bool,
    progress: Progress = lambda _: None,
    claims: ClaimPolicy | None = None,
) -> Report:
    from poetry_gitlab_release.files import sha256_file

    if bundle is not None and len(paths) != 1:
        raise UsageError("--bundle names the material of exactly one file")
    check = functools.partial(
        verify_file, verifier, expected=expected, online_log=online_log, claims=claims
    )
    results: list[FileResult] = []
    for path in paths:
        if not path.is_file():
            results.append(FileResult(path.name, Verdict.FAILED, reason=f"no such file: {path}"))
            continue
        progress(f"verifying {path}")
        digest = sha256_file(path)
        sha256, size = digest.sha256, digest.size
        try:
            material = local_material(path, bundle_dir=bundle_dir, bundle=bundle)
        except (OSError, VerificationError) as exc:
            results.append(
                FileResult(path.name, Verdict.FAILED, reason=str(exc), sha256=sha256, size=size)
            )
            continue
        result = check(name=path.name, sha256=sha256, size=size, path=path, material=material)
        if result.verdict is Verdict.UNSIGNED:
            where = f"{bundle_dir} or {path.parent}" if bundle_dir else str(path.parent)
            result = replace(
                result,
                reason=f"no {path.name}.sigstore.json, .publish.attestation or .sig/.crt in {where}",
            )
        results.append(result)
    return Report(
        subject=", ".join(p.name for p in paths),
        expected=expected.describe(),
        source="local files",
        results=tuple(results),
    )


# --- the registry ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RegistryTarget:
    """Where the files and their signatures live."""

    simple_url: str
    signature_project: str  # id or path of the project whose generic registry holds signatures
    project_path: str | None
    project_id: str | None = None  # GitLab's immutable ids for that project, asked once
    namespace_id: str | None = None


def resolve_target(
    client: GitLabClient, settings: Settings, requirement: Requirement, *, group_index: bool
) -> RegistryTarget:
    """Project mode: the project's index and registry. Group mode: the group's index, and the
    project given with --gitlab-project, else the one project of the group holding the package."""
    from poetry_gitlab_release.gitlab.urls import pypi_simple_url

    if group_index:
        group = settings.require_group()
        simple_url = pypi_simple_url(settings.api_url, group=group)
        if settings.project is not None and settings.source_of("project") == "--gitlab-project":
            project: str = settings.project
            path = settings.project_path
        else:
            project, path = owning_project(client, group, requirement)
    else:
        project = settings.require_project()
        path = settings.project_path
        simple_url = pypi_simple_url(settings.api_url, project=project)
    facts = project_facts(client, project)
    if facts is None:
        return RegistryTarget(
            simple_url=simple_url,
            signature_project=project,
            project_path=path,
            project_id=project if project.isdigit() else None,
        )
    return RegistryTarget(
        simple_url=simple_url,
        signature_project=project,
        project_path=path or facts.path,
        project_id=facts.id,
        namespace_id=facts.namespace_id,
    )


def owning_project(
    client: GitLabClient, group: str, requirement: Requirement
) -> tuple[str, str | None]:
    """The one project of `group` that holds the package (the group index does not say).

    `GET /groups/:id/packages` where GitLab has it; else each project of the group (with
    subgroups) is asked through `GET /projects/:id/packages`.
    """
    from poetry_gitlab_release.errors import NotFoundError
    from poetry_gitlab_release.gitlab.simple_index import name_search_term
    from poetry_gitlab_release.gitlab.urls import encode_id

    # Any stored spelling of the name (GitLab keeps `My_Tool` as uploaded); _is_release then
    # compares PEP 503 names.
    params: dict[str, Any] = {
        "package_type": "pypi",
        "package_name": name_search_term(requirement.name),
    }
    owners: dict[str, str | None] = {}
    try:
        for package in client.paginate(f"groups/{encode_id(group)}/packages", params):
            if _is_release(package, requirement) and package.get("project_id") is not None:
                owners[str(package["project_id"])] = package.get("project_path")
    except NotFoundError:
        projects = client.paginate(
            f"groups/{encode_id(group)}/projects",
            {"include_subgroups": "true", "with_shared": "false", "simple": "true"},
        )
        for project in projects:
            if not isinstance(project, dict) or project.get("id") is None:
                continue
            packages = client.paginate(f"projects/{project['id']}/packages", params)
            if any(_is_release(package, requirement) for package in packages):
                owners[str(project["id"])] = project.get("path_with_namespace")
    if not owners:
        raise ConfigError(
            f"cannot find which project of group {group} publishes {requirement}",
            hint="pass --gitlab-project ID|PATH to say where its signatures live",
        )
    if len(owners) > 1:
        raise ConfigError(
            f"several projects of group {group} publish {requirement}: {', '.join(sorted(owners))}",
            hint="pass --gitlab-project to choose one",
        )
    project_id, path = next(iter(owners.items()))
    return project_id, path


def _is_release(package: object, requirement: Requirement) -> bool:
    if not isinstance(package, dict):
        return False
    if normalize_name(str(package.get("name", ""))) != normalize_name(requirement.name):
        return False
    return requirement.version is None or str(package.get("version")) == requirement.version


@dataclass(frozen=True)
class ProjectFacts:
    """A GitLab project as GitLab describes it now (GET /projects/:id)."""

    id: str
    path: str
    namespace_id: str | None


def project_facts(client: GitLabClient, project: str) -> ProjectFacts | None:
    """The project's immutable id, its namespace's id and its current path, from GitLab.

    GET /projects/:id (doc/api/projects.md) answers `id`, `path_with_namespace` and
    `namespace.id`. None when the token may not read the project (a job or deploy token).
    """
    from poetry_gitlab_release.errors import ApiError
    from poetry_gitlab_release.gitlab.urls import encode_id

    try:
        body = client.get_json(f"projects/{encode_id(project)}")
    except ApiError:
        return None  # a job or deploy token may not read the project; the caller explains
    if not isinstance(body, dict):
        return None
    project_id, path = body.get("id"), body.get("path_with_namespace")
    namespace = body.get("namespace")
    namespace_id = namespace.get("id") if isinstance(namespace, dict) else None
    if not isinstance(project_id, int) or not isinstance(path, str) or not path:
        return None
    return ProjectFacts(
        id=str(project_id),
        path=path,
        namespace_id=str(namespace_id) if isinstance(namespace_id, int) else None,
    )


def fetch_registry_material(
    client: GitLabClient,
    settings: Settings,
    project: str,
    package: str,
    version: str,
    file_name: str,
    *,
    online_log: bool,
) -> SignatureMaterial | None:
    """`.sigstore.json`, else `.publish.attestation`, else `.sig`+`.crt` (online log only)."""
    from poetry_gitlab_release.gitlab.downloads import fetch_small_file
    from poetry_gitlab_release.gitlab.urls import generic_file_url

    def get(suffix: str) -> bytes | None:
        url = generic_file_url(settings.api_url, project, package, version, file_name + suffix)
        return fetch_small_file(client, url, f"{file_name}{suffix}")

    for kind in (MaterialKind.BUNDLE, MaterialKind.ATTESTATION):
        content = get(kind.value)
        if content is not None:
            return SignatureMaterial(kind, content, f"{file_name}{kind.value}")
    if online_log:
        signature = get(".sig")
        certificate = get(".crt") if signature is not None else None
        if signature is not None and certificate is not None:
            return SignatureMaterial(
                MaterialKind.DETACHED, signature, f"{file_name}.sig", certificate=certificate
            )
    return None


def verify_registry(
    settings: Settings,
    requirement: Requirement,
    *,
    dest: Path,
    identity_options: IdentityOptions,
    make_verifier: Callable[[], Verifier],
    online_log: bool,
    group_index: bool = False,
    progress: Progress = lambda _: None,
    client_factory: Callable[[Connection], GitLabClient] | None = None,
    claims: ClaimPolicy | None = None,
    pins: PinStore | None = None,
    accept_signer_change: bool = False,
) -> Report:
    from poetry_gitlab_release.gitlab.client import GitLabClient
    from poetry_gitlab_release.gitlab.connection import Connection
    from poetry_gitlab_release.gitlab.downloads import download_file
    from poetry_gitlab_release.gitlab.simple_index import fetch_project_page, select_release

    factory = client_factory or GitLabClient
    with factory(Connection.from_settings(settings)) as client:
        target = resolve_target(client, settings, requirement, group_index=group_index)
        progress(f"reading {target.simple_url}/{normalize_name(requirement.name)}/")
        files = fetch_project_page(client, target.simple_url, requirement.name)
        version_text, release = select_release(files, requirement.name, requirement.version)
        expected = signer_from_options(
            identity_options,
            server_url=settings.server_url,
            project_path=target.project_path,
            version=version_text,
        )
        policy = registry_claim_policy(
            claims or ClaimPolicy(),
            target,
            pins.get(requirement.name) if pins is not None else None,
            accept_signer_change=accept_signer_change,
        )
        verifier = make_verifier()
        check = functools.partial(
            verify_file, verifier, expected=expected, online_log=online_log, claims=policy
        )
        package = normalize_name(requirement.name)
        results: list[FileResult] = []
        for item in release:
            name = item.name
            if item.file.sha256 is None:
                results.append(
                    FileResult(name, Verdict.FAILED, reason="the index gives no sha256 for it")
                )
                continue
            progress(f"downloading {name}")
            try:
                download = download_file(
                    client, item.file.url, dest, name, expected_sha256=item.file.sha256
                )
            except VerificationError as exc:
                results.append(FileResult(name, Verdict.FAILED, reason=_strip_name(str(exc), name)))
                continue
            material = fetch_registry_material(
                client,
                settings,
                target.signature_project,
                package,
                version_text,
                name,
                online_log=online_log,
            )
            sha256, size, path = download.sha256, download.size, download.path
            result = check(name=name, sha256=sha256, size=size, path=path, material=material)
            if result.verdict is Verdict.UNSIGNED:
                detached = ", .sig/.crt" if online_log else ""
                result = replace(
                    result,
                    reason=f"no {name}.sigstore.json, .publish.attestation{detached} in "
                    f"the generic registry at {package}/{version_text}",
                )
            results.append(result)
        sbom = _verify_published_sbom(
            client,
            settings,
            target.signature_project,
            package,
            version_text,
            dest=dest,
            verifier=verifier,
            expected=expected,
            online_log=online_log,
            claims=policy,
        )
        if sbom is not None:
            results.append(sbom)
    pin_status = None
    if pins is not None:
        from poetry_gitlab_release.verify.pins import apply_pin

        checked, pin = apply_pin(
            results, pins, requirement.name, accept_change=accept_signer_change
        )
        results = list(checked)
        pin_status = None if pin is None else pin.status.value
    described = expected.describe()
    if not policy.empty:
        described += f"; {policy.describe()}"
    return Report(
        subject=f"{requirement.name}=={version_text}",
        expected=described,
        source=f"{target.simple_url}/{package}/",
        results=tuple(results),
        dest=dest,
        pin=pin_status,
        pins_file=None if pins is None else str(pins.path),
    )


def registry_claim_policy(
    base: ClaimPolicy,
    target: RegistryTarget,
    pinned: Pin | None,
    *,
    accept_signer_change: bool,
) -> ClaimPolicy:
    from poetry_gitlab_release.verify.pins import claim_policy_with_ids

    return claim_policy_with_ids(
        base,
        pinned,
        project_id=target.project_id,
        namespace_id=target.namespace_id,
        where=target.project_path or target.signature_project,
        accept_change=accept_signer_change,
    )


def _verify_published_sbom(
    client: GitLabClient,
    settings: Settings,
    project: str,
    package: str,
    version: str,
    *,
    dest: Path,
    verifier: Verifier,
    expected: ExpectedIdentity,
    online_log: bool,
    claims: ClaimPolicy | None = None,
) -> FileResult | None:
    """The release's CycloneDX SBOM (#16), a row of its own; None when none was published.

    poetry-gitlab-release publishes `<name>-<version>.cdx.json` and its signature beside the
    other signatures in the generic registry; it is verified like a package file.
    """
    import hashlib

    from poetry_gitlab_release.gitlab.downloads import fetch_small_file
    from poetry_gitlab_release.gitlab.urls import generic_file_url

    name = f"{re.sub(r'[-_.]+', '_', package).lower()}-{version}{SBOM_SUFFIX}"
    url = generic_file_url(settings.api_url, project, package, version, name)
    content = fetch_small_file(client, url, name, max_bytes=SBOM_MAX_BYTES)
    if content is None:
        return None
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / name
    path.write_bytes(content)
    material = fetch_registry_material(
        client, settings, project, package, version, name, online_log=online_log
    )
    result = verify_file(
        verifier,
        name=name,
        sha256=hashlib.sha256(content).hexdigest(),
        size=len(content),
        path=path,
        material=material,
        expected=expected,
        online_log=online_log,
        claims=claims,
    )
    if result.verdict is Verdict.UNSIGNED:
        result = replace(result, reason=f"no {name}.sigstore.json in the generic registry")
    return result


def _strip_name(message: str, name: str) -> str:
    prefix = f"{name}: "
    return message.removeprefix(prefix)
