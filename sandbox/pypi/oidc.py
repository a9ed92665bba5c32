"""Trusted Publishing on the stand-in: `/_/oidc/audience` and `/_/oidc/mint-token`.

Follows pypi/warehouse, whose texts the errors reuse:
- warehouse/oidc/views.py: `oidc_audience` answers `{"audience": ...}` (403 and
  `{"message": "Trusted publishing functionality not enabled"}` when disabled);
  `mint_token_from_oidc` parses `{"token": ...}` (else 422 `invalid-payload`), peeks at the
  unverified `iss` (`malformed JWT`, `unknown trusted publishing issuer`), verifies the token
  (`invalid-token`: `malformed or invalid token`), finds the publisher (`invalid-publisher`:
  `valid token, but no corresponding publisher (...)`, `invalid-reuse-token`:
  `invalid token: already used`), mints a token valid 900 s and records the `jti`.
  Every failure is HTTP 422 `{"message": "Token request failed", "errors": [...]}`.
- warehouse/oidc/services.py `verify_jwt_signature`: the key by `kid` from the issuer's JWKS
  (cached 60 s), `require=[iss, iat, exp, aud]`, `strict_aud` (a list-valued `aud` fails),
  `leeway=30`. Warehouse takes only RS256, which GitLab signs with; the sandbox's token
  minter signs ES256, so the stand-in takes the algorithm the JWKS key declares.
- pypi/warehouse#20197 (`POST /_/oidc/burn-token`, `{"token": ...}`): a client may burn its
  minted token as soon as it is done; uv does. The failure shape is the stand-in's guess.
- warehouse/oidc/models/gitlab.py: GitLab is `https://gitlab.com` only
  (GITLAB_OIDC_ISSUER_URL); a publisher is namespace/project + CI file path (from
  `ci_config_ref_uri`, `_WORKFLOW_FILEPATH_RE`) + optional environment; required claims
  `sub`, `project_path`, `ci_config_ref_uri`, `jti`, `ref_path`, `sha`; and the checks
  `_check_sub`, `_check_project_path` (case-insensitive), `_check_ci_config_ref_uri`
  (`{gitlab.com/ns/proj//file}@{ref_path|sha}`) and `_check_environment`.
  warehouse/oidc/models/_core.py: `Missing claim 'x'`, `Check failed for required claim 'x'`,
  `Check failed for optional claim 'x'`.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import jwt

GITLAB_ISSUER = "https://gitlab.com"
DEFAULT_AUDIENCE = "pypi"
UPLOAD_TOKEN_LIFETIME = 900  # warehouse/oidc/views.py: expires_at = not_before + 900
_KEYSET_TTL = 60  # warehouse caches an issuer's JWKS for 60 s

# warehouse/oidc/models/gitlab.py `_WORKFLOW_FILEPATH_RE`
_WORKFLOW_FILEPATH_RE = re.compile(r"(?<=\/\/)(.+[^/]\.(yml|yaml))(?=@)")


@dataclass(frozen=True)
class TrustedPublisher:
    """A GitLab trusted publisher as configured on pypi.org for `project`.

    `repository` is `namespace/project` (subgroups included); `workflow_filepath` the CI
    file's path in the repository; `environment` empty for "any environment".
    """

    project: str
    repository: str
    workflow_filepath: str = ".gitlab-ci.yml"
    environment: str = ""

    @property
    def ci_config_ref_uri(self) -> str:
        return f"gitlab.com/{self.repository}//{self.workflow_filepath}"

    def attestation_identity(self) -> Any:
        """pypi-attestations' GitLabPublisher, as warehouse's `attestation_identity`."""
        from pypi_attestations import GitLabPublisher

        return GitLabPublisher(
            repository=self.repository,
            workflow_filepath=self.workflow_filepath,
            environment=self.environment or None,
        )


@dataclass(frozen=True)
class UploadToken:
    """A minted (or classic API) token: who it speaks for, and until when."""

    project: str
    publisher: TrustedPublisher | None
    not_before: int
    expires_at: int | None
    claims: dict[str, Any] = field(default_factory=dict)


class MintError(Exception):
    def __init__(self, code: str, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


class _InvalidPublisherError(Exception):
    pass


def _check_ci_config_ref_uri(publisher: TrustedPublisher, claims: dict[str, Any]) -> None:
    signed = claims.get("ci_config_ref_uri")
    if not signed:
        raise _InvalidPublisherError("The ci_config_ref_uri claim is empty")
    ref_path, sha = claims.get("ref_path"), claims.get("sha")
    if not (ref_path and sha):
        raise _InvalidPublisherError("The ref_path and sha claims are empty")
    expected = {f"{publisher.ci_config_ref_uri}@{ref}" for ref in (ref_path, sha) if ref}
    if signed not in expected:
        raise _InvalidPublisherError(
            "The ci_config_ref_uri claim does not match, expecting one of "
            f"{sorted(expected)!r}, got {signed!r}"
        )


def _check_sub(publisher: TrustedPublisher, signed: object) -> bool:
    if not isinstance(signed, str) or not signed:
        return False
    components = signed.split(":")
    if len(components) < 2 or not components[0] or not components[1]:
        return False
    return f"{components[0]}:{components[1]}".lower() == f"project_path:{publisher.repository}"


class OIDCExchange:
    """Verifies GitLab ID tokens and mints upload tokens for configured trusted publishers."""

    def __init__(
        self,
        *,
        jwks_url: str,
        issuer: str = GITLAB_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
        lifetime: int = UPLOAD_TOKEN_LIFETIME,
    ) -> None:
        self.jwks_url = jwks_url
        self.issuer = issuer
        self.audience = audience
        self.lifetime = lifetime
        self.enabled = True
        self.publishers: list[TrustedPublisher] = []
        self.tokens: dict[str, UploadToken] = {}
        self.used_jti: set[str] = set()
        self.exchanges = 0
        self.burned = 0
        self._keyset: dict[str, dict[str, Any]] = {}
        self._keyset_at = 0.0
        self._lock = threading.Lock()

    # -- JWKS ---------------------------------------------------------------------------
    def _key(self, kid: str) -> dict[str, Any]:
        now = time.monotonic()
        if kid not in self._keyset or now - self._keyset_at > _KEYSET_TTL:
            with urllib.request.urlopen(self.jwks_url, timeout=5) as response:
                keys = json.loads(response.read()).get("keys") or []
            self._keyset = {str(key.get("kid")): key for key in keys}
            self._keyset_at = now
        if kid not in self._keyset:
            raise jwt.PyJWTError(f"Key ID {kid!r} not found for issuer {self.issuer!r}")
        return self._keyset[kid]

    def _verify(self, token: str) -> dict[str, Any] | None:
        try:
            header = jwt.get_unverified_header(token)
            jwk = self._key(str(header.get("kid")))
            key = jwt.PyJWK(jwk)
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[str(jwk.get("alg") or header.get("alg"))],
                options={
                    "verify_signature": True,
                    "require": ["iss", "iat", "exp", "aud"],
                    "verify_iss": True,
                    "verify_iat": True,
                    "verify_exp": True,
                    "verify_aud": True,
                    "verify_nbf": True,
                    "strict_aud": True,
                },
                issuer=self.issuer,
                audience=self.audience,
                leeway=30,
            )
            return claims
        except (jwt.PyJWTError, OSError, ValueError):
            return None

    # -- publishers ----------------------------------------------------------------------
    def _find_publisher(self, claims: dict[str, Any]) -> TrustedPublisher:
        for name in ("sub", "project_path", "ci_config_ref_uri", "jti", "ref_path", "sha"):
            if claims.get(name) is None:
                raise _InvalidPublisherError(f"Missing claim {name!r}")
        project_path = str(claims["project_path"])
        if "/" not in project_path:
            raise _InvalidPublisherError("Publisher with matching claims was not found")
        workflow = _WORKFLOW_FILEPATH_RE.search(str(claims["ci_config_ref_uri"]))
        if workflow is None:
            raise _InvalidPublisherError("Could not extract workflow filename from OIDC claims")
        candidates = [
            p
            for p in self.publishers
            if p.repository == project_path and p.workflow_filepath == workflow.group(0)
        ]
        environment = claims.get("environment")
        chosen = next(
            (p for p in candidates if environment and p.environment == str(environment).lower()),
            None,
        ) or next((p for p in candidates if p.environment == ""), None)
        if chosen is None:
            raise _InvalidPublisherError("Publisher with matching claims was not found")
        if not _check_sub(chosen, claims["sub"]):
            raise _InvalidPublisherError("Check failed for required claim 'sub'")
        if project_path.lower() != chosen.repository.lower():
            raise _InvalidPublisherError("Check failed for required claim 'project_path'")
        _check_ci_config_ref_uri(chosen, claims)
        if str(claims["jti"]) in self.used_jti:
            raise MintError("invalid-reuse-token", "invalid token: already used")
        if chosen.environment and chosen.environment != environment:
            raise _InvalidPublisherError("Check failed for optional claim 'environment'")
        return chosen

    # -- the endpoint --------------------------------------------------------------------
    def mint(self, body: bytes) -> dict[str, Any]:
        """The mint-token answer; raises MintError for a 422."""
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise MintError(
                "invalid-payload",
                f"1 validation error for TokenPayload\n  Invalid JSON: {exc}",
            ) from None
        if not isinstance(payload, dict) or not isinstance(payload.get("token"), str):
            raise MintError(
                "invalid-payload",
                "1 validation error for TokenPayload\ntoken\n  Input should be a valid string",
            )
        raw: str = payload["token"]
        try:
            unverified = jwt.decode(raw, options={"verify_signature": False})
            issuer = unverified["iss"]
        except (jwt.PyJWTError, KeyError, TypeError):
            raise MintError("invalid-payload", "malformed JWT") from None
        if issuer != self.issuer:
            raise MintError("invalid-payload", "unknown trusted publishing issuer")
        if not self.enabled:
            raise MintError("not-enabled", "gitlab trusted publishing functionality not enabled")
        claims = self._verify(raw)
        if claims is None:
            raise MintError("invalid-token", "malformed or invalid token")
        with self._lock:
            try:
                publisher = self._find_publisher(claims)
            except _InvalidPublisherError as exc:
                raise MintError(
                    "invalid-publisher", f"valid token, but no corresponding publisher ({exc})"
                ) from None
            not_before = int(time.time())
            expires_at = not_before + self.lifetime
            token = "pypi-" + secrets.token_urlsafe(48)
            self.tokens[token] = UploadToken(
                publisher.project, publisher, not_before, expires_at, claims
            )
            self.used_jti.add(str(claims["jti"]))
            self.exchanges += 1
        return {"success": True, "token": token, "expires": expires_at}

    def burn(self, token: str) -> bool:
        """Invalidate a minted token (pypi/warehouse#20197); False if unknown or not minted."""
        with self._lock:
            found = self.tokens.get(token)
            if found is None or found.publisher is None:
                return False
            del self.tokens[token]
            self.burned += 1
            return True

    def api_token(self, project: str) -> str:
        """A classic project-scoped API token (no expiry), as made on pypi.org's web UI."""
        token = "pypi-" + secrets.token_urlsafe(48)
        self.tokens[token] = UploadToken(project, None, int(time.time()), None)
        return token
