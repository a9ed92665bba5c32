"""GitLab credentials: a token that never shows itself, its kind, and how each API wants it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

JOB_TOKEN_USERNAME = "gitlab-ci-token"


class Secret:
    """A credential. It never shows itself in str(), repr() or f-strings; call reveal()."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    def __str__(self) -> str:
        return "********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class TokenKind(str, Enum):
    """How GitLab sees a token; each kind is presented differently on each API."""

    PERSONAL = "personal"  # personal, project and group access tokens
    DEPLOY = "deploy"
    JOB = "job"


# Prefixes GitLab puts on new tokens; older tokens have none and count as personal.
_TOKEN_PREFIXES = {"glpat-": TokenKind.PERSONAL, "gldt-": TokenKind.DEPLOY, "glcbt-": TokenKind.JOB}


@dataclass(frozen=True)
class Credential:
    token: Secret
    kind: TokenKind
    source: str
    username: str | None = None

    def basic_auth(self) -> tuple[str, str]:
        """Username and password for HTTP Basic (the only scheme the PyPI routes accept)."""
        if self.kind is TokenKind.JOB:
            return JOB_TOKEN_USERNAME, self.token.reveal()
        # GitLab ignores the username for personal and deploy tokens; send a meaningful one.
        default = "deploy-token" if self.kind is TokenKind.DEPLOY else "__token__"
        return self.username or default, self.token.reveal()

    def rest_headers(self) -> dict[str, str]:
        """Headers for the REST API (packages, generic registry, groups, pipelines)."""
        header = {
            TokenKind.PERSONAL: "PRIVATE-TOKEN",
            TokenKind.DEPLOY: "DEPLOY-TOKEN",
            TokenKind.JOB: "JOB-TOKEN",
        }[self.kind]
        return {header: self.token.reveal()}

    @property
    def description(self) -> str:
        return f"{self.kind.value} token from {self.source}"


def infer_token_kind(token: str, source: str) -> TokenKind:
    if source == "CI_JOB_TOKEN":
        return TokenKind.JOB
    for prefix, kind in _TOKEN_PREFIXES.items():
        if token.startswith(prefix):
            return kind
    return TokenKind.PERSONAL
