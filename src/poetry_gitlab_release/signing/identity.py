"""The signer identity we expect, from GitLab facts, and how a certificate compares with it.

Fulcio's GitLab profile puts `https://{ci_config_ref_uri}` in the certificate's SAN, e.g.
`https://gitlab.com/group/project//.gitlab-ci.yml@refs/tags/v1.0.0` (the `//` separates the
project path from the CI config path and is intentional), the token's `iss` in the issuer
extensions, and `{iss}/{project_path}` and the ref in the source-repository extensions.

This module imports no sigstore at import time; `to_policy()` does, when verification runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from poetry_gitlab_release.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

    from cryptography.x509 import Certificate
    from sigstore.verify.policy import VerificationPolicy

FULCIO_OID_PREFIX = "1.3.6.1.4.1.57264.1."

# Extension number -> the name we show when it does not match.
EXTENSION_NAMES = {
    1: "issuer",
    8: "issuer",
    9: "build signer URI",
    10: "build signer digest",
    11: "runner environment",
    12: "source repository URI",
    13: "commit",
    14: "ref",
    15: "project id",
    16: "namespace URI",
    17: "namespace id",
    18: "build config URI",
    19: "build config digest",
    20: "pipeline source",
    21: "job URL",
    22: "project visibility",
}


def git_ref(*, tag: str | None = None, branch: str | None = None) -> str:
    if tag:
        return tag if tag.startswith("refs/") else f"refs/tags/{tag}"
    if branch:
        return branch if branch.startswith("refs/") else f"refs/heads/{branch}"
    raise ConfigError("a tag or a branch is needed to know the expected signer identity")


def gitlab_identity(server_url: str, project_path: str, ci_config_path: str, ref: str) -> str:
    """The SAN Fulcio gives a GitLab CI job: always https://, host[:port] of the server."""
    netloc = urlsplit(server_url).netloc
    base_path = urlsplit(server_url).path.strip("/")
    prefix = f"{netloc}/{base_path}" if base_path else netloc
    return f"https://{prefix}/{project_path.strip('/')}//{ci_config_path.lstrip('/')}@{ref}"


@dataclass(frozen=True)
class ExpectedIdentity:
    """What a certificate must say. `identity_pattern` (a full-match regex) replaces `identity`."""

    issuer: str
    identity: str | None = None
    identity_pattern: str | None = None
    repository_uri: str | None = None
    ref: str | None = None
    ref_pattern: str | None = None

    def __post_init__(self) -> None:
        if (self.identity is None) == (self.identity_pattern is None):
            raise ValueError("give exactly one of identity and identity_pattern")
        for pattern in (self.identity_pattern, self.ref_pattern):
            if pattern is not None:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ConfigError(f"invalid regular expression {pattern!r}: {exc}") from None

    @classmethod
    def for_gitlab(
        cls,
        *,
        server_url: str,
        project_path: str,
        ref: str,
        ci_config_path: str = ".gitlab-ci.yml",
        issuer: str | None = None,
    ) -> ExpectedIdentity:
        issuer = issuer or server_url
        return cls(
            issuer=issuer,
            identity=gitlab_identity(server_url, project_path, ci_config_path, ref),
            repository_uri=f"{issuer.rstrip('/')}/{project_path.strip('/')}",
            ref=ref,
        )

    def describe(self) -> str:
        who = self.identity if self.identity is not None else f"/{self.identity_pattern}/"
        return f"{who} (issuer {self.issuer})"

    def to_policy(self) -> VerificationPolicy:
        from sigstore.verify import policy

        children: list[VerificationPolicy] = []
        if self.identity is not None:
            children.append(policy.Identity(identity=self.identity, issuer=self.issuer))
        else:
            children.append(policy.OIDCIssuer(self.issuer))
            children.append(_PatternPolicy("identity", self.identity_pattern or "", _san_values))
        if self.repository_uri is not None:
            children.append(policy.OIDCSourceRepositoryURI(self.repository_uri))
        if self.ref is not None:
            children.append(policy.OIDCSourceRepositoryRef(self.ref))
        if self.ref_pattern is not None:
            children.append(
                _PatternPolicy("ref", self.ref_pattern, lambda cert: [_extension(cert, 14) or ""])
            )
        return policy.AllOf(children)


@dataclass(frozen=True)
class CertificateFacts:
    """What a Fulcio certificate says about the GitLab job that signed."""

    identity: str | None
    extensions: dict[int, str] = field(default_factory=dict)

    @property
    def issuer(self) -> str | None:
        return self.extensions.get(8) or self.extensions.get(1)

    @property
    def ref(self) -> str | None:
        return self.extensions.get(14)

    @property
    def commit(self) -> str | None:
        return self.extensions.get(13)

    @property
    def job_url(self) -> str | None:
        return self.extensions.get(21)

    @property
    def repository_uri(self) -> str | None:
        return self.extensions.get(12)


def certificate_facts(cert: Certificate) -> CertificateFacts:
    return CertificateFacts(
        identity=next(iter(_san_values(cert)), None),
        extensions={
            number: value for number in EXTENSION_NAMES if (value := _extension(cert, number))
        },
    )


def mismatches(expected: ExpectedIdentity, facts: CertificateFacts) -> list[str]:
    """Each field that differs, as `field is X, expected Y`: what a user needs to fix a policy."""
    problems: list[str] = []

    def compare(
        name: str, actual: str | None, wanted: str | None, pattern: str | None = None
    ) -> None:
        if wanted is not None and actual != wanted:
            problems.append(f"{name} is {actual or 'missing'}, expected {wanted}")
        if pattern is not None and (actual is None or not re.fullmatch(pattern, actual)):
            problems.append(f"{name} is {actual or 'missing'}, expected a match of /{pattern}/")

    compare("issuer", facts.issuer, expected.issuer)
    compare("identity", facts.identity, expected.identity, expected.identity_pattern)
    compare("source repository", facts.repository_uri, expected.repository_uri)
    compare("ref", facts.ref, expected.ref, expected.ref_pattern)
    return problems


def _san_values(cert: Certificate) -> list[str]:
    from poetry_gitlab_release.signing.claims import san_uris

    return san_uris(cert)


def _extension(cert: Certificate, number: int) -> str | None:
    from poetry_gitlab_release.signing.claims import extension_text

    return extension_text(cert, number)


class _PatternPolicy:
    """A sigstore policy whose value must fully match a regular expression."""

    def __init__(self, name: str, pattern: str, values: Callable[[Certificate], list[str]]) -> None:
        self._name = name
        self._pattern = re.compile(pattern)
        self._values = values

    def verify(self, cert: Certificate) -> None:
        from sigstore.errors import VerificationError

        found = self._values(cert)
        if not any(self._pattern.fullmatch(value) for value in found):
            raise VerificationError(
                f"{self._name} {found} does not match /{self._pattern.pattern}/"
            )
