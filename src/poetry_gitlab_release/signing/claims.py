"""GitLab's claims in a Fulcio certificate, and a policy over the immutable ones.

Fulcio's `gitlab-pipeline` template (sigstore/fulcio `config/identity/config.yaml`) copies the
GitLab CI ID token's claims into certificate extensions under 1.3.6.1.4.1.57264.1
(sigstore/fulcio `docs/oid-info.md`):

    1.8  issuer                    `iss`
    1.9  build signer URI          `https://{ci_config_ref_uri}` (also the SAN)
    1.10 build signer digest       `ci_config_sha`
    1.11 runner environment        `runner_environment` (`gitlab-hosted` | `self-hosted`)
    1.12 source repository URI     `{url}/{project_path}`
    1.13 source repository digest  `sha`
    1.14 source repository ref     `refs/heads/{ref}` | `refs/tags/{ref}`
    1.15 source repository id      `project_id`      immutable: survives renames and moves
    1.16 owner URI                 `{url}/{namespace_path}`
    1.17 owner id                  `namespace_id`    immutable
    1.18 build config URI          `https://{ci_config_ref_uri}`
    1.19 build config digest       `ci_config_sha`
    1.20 build trigger             `pipeline_source` (`push`, `web`, `schedule`, ...)
    1.21 run invocation URI        `{url}/{project_path}/-/jobs/{job_id}`
    1.22 visibility at signing     `project_visibility`
    1.23 deployment environment    `environment`, only when the job has one

1.8 to 1.23 hold a DER UTF8String (tag 0x0C); 1.1 holds the raw issuer bytes. A path (1.12,
the SAN) is mutable: a renamed or deleted project frees it for anyone. The ids are not, which
is what `ClaimPolicy` checks.

Only `cryptography` is imported, and only when a certificate is read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from poetry_gitlab_release.errors import ConfigError

if TYPE_CHECKING:
    from cryptography.x509 import Certificate

FULCIO_OID_PREFIX = "1.3.6.1.4.1.57264.1."

# GitLab's runner_environment values (lib/gitlab/ci/jwt_v2.rb: GITLAB_HOSTED_RUNNER,
# SELF_HOSTED_RUNNER).
RUNNER_ENVIRONMENTS = ("gitlab-hosted", "self-hosted")

# GitLab's pipeline sources (app/models/concerns/enums/ci/pipeline.rb `sources`); GitLab adds
# new ones over time, so an unknown but well-formed name is accepted.
KNOWN_PIPELINE_SOURCES = (
    "push",
    "web",
    "trigger",
    "schedule",
    "api",
    "external",
    "pipeline",
    "chat",
    "webide",
    "merge_request_event",
    "external_pull_request_event",
    "parent_pipeline",
    "ondemand_dast_scan",
    "ondemand_dast_validation",
    "security_orchestration_policy",
    "container_registry_push",
    "duo_workflow",
    "pipeline_execution_policy_schedule",
)

_SOURCE_NAME = re.compile(r"^[a-z][a-z_]*$")


@dataclass(frozen=True)
class GitLabClaims:
    """Everything Fulcio's GitLab template wrote into one certificate (None: absent)."""

    identity: str | None = None  # SAN URI
    issuer: str | None = None  # 1.8, else legacy 1.1
    build_signer_digest: str | None = None  # 1.10 ci_config_sha
    runner_environment: str | None = None  # 1.11
    source_repository_uri: str | None = None  # 1.12
    commit: str | None = None  # 1.13
    ref: str | None = None  # 1.14
    project_id: str | None = None  # 1.15
    namespace_uri: str | None = None  # 1.16
    namespace_id: str | None = None  # 1.17
    build_config_uri: str | None = None  # 1.18
    build_config_digest: str | None = None  # 1.19 ci_config_sha
    pipeline_source: str | None = None  # 1.20
    job_url: str | None = None  # 1.21
    visibility: str | None = None  # 1.22
    environment: str | None = None  # 1.23

    def as_dict(self) -> dict[str, str]:
        """The claims present, by field name (for dist/release.json and JSON reports)."""
        return {f.name: value for f in fields(self) if (value := getattr(self, f.name))}


# Extension number -> GitLabClaims field. 1.9 and 1.18 repeat the SAN: read, not stored twice.
_EXTENSION_FIELDS: dict[int, str] = {
    10: "build_signer_digest",
    11: "runner_environment",
    12: "source_repository_uri",
    13: "commit",
    14: "ref",
    15: "project_id",
    16: "namespace_uri",
    17: "namespace_id",
    18: "build_config_uri",
    19: "build_config_digest",
    20: "pipeline_source",
    21: "job_url",
    22: "visibility",
    23: "environment",
}


def der_utf8_string(raw: bytes) -> str | None:
    """The text of a DER UTF8String (tag 0x0C), or None when `raw` is not exactly one.

    Strict: the length must be minimally encoded and cover the rest of `raw` exactly, so a
    crafted extension cannot smuggle trailing bytes past a comparison.
    """
    if len(raw) < 2 or raw[0] != 0x0C:
        return None
    first = raw[1]
    if first < 0x80:
        length, offset = first, 2
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or len(raw) < 2 + count:
            return None
        length = int.from_bytes(raw[2 : 2 + count], "big")
        offset = 2 + count
        if length < 0x80 or raw[2] == 0:  # not the minimal (DER) encoding
            return None
    if offset + length != len(raw):
        return None
    try:
        return raw[offset:].decode("utf-8")
    except UnicodeDecodeError:
        return None


def extension_text(cert: Certificate, number: int) -> str | None:
    """Fulcio extension 1.3.6.1.4.1.57264.1.{number} as text; None if absent or malformed."""
    from cryptography.x509 import ExtensionNotFound, ObjectIdentifier, UnrecognizedExtension

    try:
        extension = cert.extensions.get_extension_for_oid(
            ObjectIdentifier(f"{FULCIO_OID_PREFIX}{number}")
        )
    except ExtensionNotFound:
        return None
    value = extension.value
    if not isinstance(value, UnrecognizedExtension):
        return None
    if number >= 8:
        return der_utf8_string(value.value)
    try:  # 1.1 to 1.6: the raw bytes of the claim
        return value.value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def san_uris(cert: Certificate) -> list[str]:
    """The certificate's URI subject alternative names (Fulcio's GitLab SAN is one)."""
    from cryptography.x509 import (
        ExtensionNotFound,
        SubjectAlternativeName,
        UniformResourceIdentifier,
    )

    try:
        san = cert.extensions.get_extension_for_class(SubjectAlternativeName).value
    except ExtensionNotFound:
        return []
    return list(san.get_values_for_type(UniformResourceIdentifier))


def san_uri(cert: Certificate) -> str | None:
    return next(iter(san_uris(cert)), None)


def read_claims(cert: Certificate) -> GitLabClaims:
    """The GitLab claims of a Fulcio certificate."""
    values: dict[str, str | None] = {
        name: extension_text(cert, number) for number, name in _EXTENSION_FIELDS.items()
    }
    return GitLabClaims(
        identity=san_uri(cert),
        issuer=extension_text(cert, 8) or extension_text(cert, 1),
        **values,
    )


# --- policy ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimPolicy:
    """What the immutable and optional claims must be. None / empty: not checked.

    `origins` says, per field, where an expectation came from (`--project-id`, "GitLab",
    "gitlab-verify.lock"), so that a mismatch tells the user what to change.
    """

    project_id: str | None = None
    namespace_id: str | None = None
    runner_environment: str | None = None
    pipeline_sources: tuple[str, ...] = ()
    environment: str | None = None
    origins: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("project_id", "namespace_id"):
            value = getattr(self, name)
            if value is not None and not (value.isascii() and value.isdigit()):
                option = name.replace("_", "-")
                raise ConfigError(f"--{option} {value!r}: expected a numeric GitLab id")
        if (
            self.runner_environment is not None
            and self.runner_environment not in RUNNER_ENVIRONMENTS
        ):
            raise ConfigError(
                f"--runner-environment {self.runner_environment!r}: expected one of "
                + ", ".join(RUNNER_ENVIRONMENTS)
            )
        for source in self.pipeline_sources:
            if not _SOURCE_NAME.match(source):
                raise ConfigError(
                    f"--pipeline-source {source!r}: expected a GitLab pipeline source such as "
                    + ", ".join(KNOWN_PIPELINE_SOURCES[:5])
                )
        if self.environment is not None and not self.environment.strip():
            raise ConfigError("--environment: expected a GitLab environment name")

    @property
    def empty(self) -> bool:
        return not (
            self.project_id
            or self.namespace_id
            or self.runner_environment
            or self.pipeline_sources
            or self.environment
        )

    def with_defaults(self, **values: tuple[str | None, str]) -> ClaimPolicy:
        """Fill fields still unset from (value, origin) pairs; explicit values win."""
        from dataclasses import replace

        updates: dict[str, Any] = {}
        origins = dict(self.origins)
        for name, (value, origin) in values.items():
            if value is not None and getattr(self, name) is None:
                updates[name] = value
                origins[name] = origin
        return replace(self, **updates, origins=origins) if updates else self

    def mismatches(self, claims: GitLabClaims) -> list[str]:
        """One `X is A, expected B (origin)` line per claim that differs."""
        problems: list[str] = []

        def compare(label: str, name: str, actual: str | None, wanted: str | None) -> None:
            if wanted is not None and actual != wanted:
                origin = self.origins.get(name)
                suffix = f" ({origin})" if origin else ""
                problems.append(f"{label} is {actual or 'missing'}, expected {wanted}{suffix}")

        compare("project id", "project_id", claims.project_id, self.project_id)
        compare("namespace id", "namespace_id", claims.namespace_id, self.namespace_id)
        compare(
            "runner environment",
            "runner_environment",
            claims.runner_environment,
            self.runner_environment,
        )
        if self.pipeline_sources and claims.pipeline_source not in self.pipeline_sources:
            wanted = " or ".join(self.pipeline_sources)
            problems.append(
                f"pipeline source is {claims.pipeline_source or 'missing'}, expected {wanted}"
            )
        compare("environment", "environment", claims.environment, self.environment)
        return problems

    def describe(self) -> str:
        parts = []
        if self.project_id:
            parts.append(f"project id {self.project_id}")
        if self.namespace_id:
            parts.append(f"namespace id {self.namespace_id}")
        if self.runner_environment:
            parts.append(f"runner {self.runner_environment}")
        if self.pipeline_sources:
            parts.append(f"pipeline source {'|'.join(self.pipeline_sources)}")
        if self.environment:
            parts.append(f"environment {self.environment}")
        return ", ".join(parts)

    def as_sigstore_policy(self) -> ClaimsVerificationPolicy:
        return ClaimsVerificationPolicy(self)


class ClaimsVerificationPolicy:
    """A sigstore-python verification policy (anything with `verify(cert)`) over the claims."""

    def __init__(self, policy: ClaimPolicy) -> None:
        self.policy = policy

    def verify(self, cert: Certificate) -> None:
        from sigstore.errors import VerificationError

        problems = self.policy.mismatches(read_claims(cert))
        if problems:
            raise VerificationError("; ".join(problems))


def pipeline_sources(values: Iterable[str]) -> tuple[str, ...]:
    """`--pipeline-source push,web --pipeline-source schedule` -> ("push", "web", "schedule")."""
    found: list[str] = []
    for value in values:
        for part in value.split(","):
            name = part.strip()
            if name and name not in found:
                found.append(name)
    return tuple(found)
