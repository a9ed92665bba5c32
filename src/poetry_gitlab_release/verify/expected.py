"""What the consumer asked for: a requirement, and the signer its options describe."""

from __future__ import annotations

import re
from dataclasses import dataclass

from poetry_gitlab_release.errors import UsageError
from poetry_gitlab_release.signing.identity import ExpectedIdentity, expected_identity, git_ref

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
