"""GitLab CI `id_tokens` minter: ES256 JWTs with the claims GitLab puts in them.

The claim set follows GitLab's ID token (doc/ci/secrets/id_token_authentication.md):
ids are strings, `sub` is `project_path:{path}:ref_type:{type}:ref:{ref}`, `nbf` is
five seconds before `iat`, and `ci_config_ref_uri` is
`{host[:port]}/{project_path}//{ci_config_path}@refs/{heads|tags}/{ref}` (no scheme).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from sandbox.sigstore.keys import key_id, new_p256

DEFAULT_AUDIENCE = "sigstore"


def server_fqdn(server_url: str) -> str:
    """`CI_SERVER_FQDN`: host plus a non-default port, no scheme, no path."""
    parts = urlsplit(server_url)
    return parts.netloc


def ref_path(ref: str, ref_type: str) -> str:
    return f"refs/{'heads' if ref_type == 'branch' else 'tags'}/{ref}"


def _fake_sha(*parts: object) -> str:
    return hashlib.sha1("\0".join(str(p) for p in parts).encode()).hexdigest()


def gitlab_claims(
    *,
    issuer: str,
    project_path: str,
    project_id: int,
    ref: str,
    ref_type: str,
    ci_config_path: str,
    server_url: str,
    audience: str | list[str],
    lifetime: int,
    issued_at: int,
    namespace_id: int | None = None,
    environment: str | None = None,
    **overrides: object,
) -> dict[str, Any]:
    """The claim set of a GitLab CI ID token; `overrides` replaces or adds claims.

    `namespace_id` is the project's group (or user namespace) id, as GitLab puts it in every
    token (`JSONWebToken::UserProjectTokenClaims`); the GitLab stand-in's project gives it.
    Without one, a stable fake is derived from the project id. `environment` adds the four
    environment claims GitLab adds only when the job deploys to an environment
    (lib/gitlab/ci/jwt.rb `ci_claims`: environment, environment_protected, deployment_tier,
    environment_action).
    """
    namespace_path = project_path.rsplit("/", 1)[0] if "/" in project_path else project_path
    if namespace_id is None:
        namespace_id = project_id // 1000 * 1000 or 1
    sha = _fake_sha("commit", project_path, ref)
    ref_full = ref_path(ref, ref_type)
    pipeline_id = 100000 + project_id
    claims: dict[str, Any] = {
        "namespace_id": str(namespace_id),
        "namespace_path": namespace_path,
        "project_id": str(project_id),
        "project_path": project_path,
        "user_id": "1",
        "user_login": "root",
        "user_email": "root@example.com",
        "user_access_level": "owner",
        "pipeline_id": str(pipeline_id),
        "pipeline_source": "push",
        "job_id": str(pipeline_id * 10 + 1),
        "ref": ref,
        "ref_type": ref_type,
        "ref_path": ref_full,
        "ref_protected": "true",
        "runner_id": 1,
        "runner_environment": "gitlab-hosted",
        "sha": sha,
        "project_visibility": "private",
        "ci_config_ref_uri": (
            f"{server_fqdn(server_url)}/{project_path}//{ci_config_path}@{ref_full}"
        ),
        "ci_config_sha": sha,
        "jti": str(uuid.uuid4()),
        "iss": issuer,
        "iat": issued_at,
        "nbf": issued_at - 5,
        "exp": issued_at + lifetime,
        "sub": f"project_path:{project_path}:ref_type:{ref_type}:ref:{ref}",
        "aud": audience,
    }
    if environment:
        claims.update(
            {
                "environment": environment,
                "environment_protected": "false",
                "deployment_tier": "production" if environment == "production" else "other",
                "environment_action": "start",
            }
        )
    claims.update(overrides)
    return claims


class TokenMinter:
    """Holds the issuer's ES256 signing key; mints and verifies tokens."""

    def __init__(self, issuer: str, key: ec.EllipticCurvePrivateKey | None = None) -> None:
        self.issuer = issuer
        self.key = key or new_p256()
        self.kid = key_id(self.key.public_key()).hex()[:16]

    def mint(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": self.kid})

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(ECAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "alg": "ES256"})
        return {"keys": [jwk]}

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer.rstrip('/')}/oauth/discovery/keys",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public", "pairwise"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nbf"],
        }

    def verify(self, token: str, *, audience: str, now: float | None = None) -> dict[str, Any]:
        """Verify as go-oidc does for Fulcio: signature, issuer, audience, expiry.

        Raises `jwt.InvalidTokenError` on any failure.
        """
        claims: dict[str, Any] = jwt.decode(
            token,
            self.key.public_key(),
            algorithms=["ES256"],
            audience=audience,
            issuer=self.issuer,
            options={
                "require": ["iss", "sub", "aud", "exp", "iat"],
                "verify_nbf": False,  # checked below with go-oidc's skew
                "verify_iat": False,  # go-oidc does not check `iat`
            },
            leeway=0,
        )
        current = time.time() if now is None else now
        # go-oidc allows a one-minute clock skew on `nbf`, none on `exp`.
        if "nbf" in claims and current + 60 < float(claims["nbf"]):
            raise jwt.ImmatureSignatureError("token not yet valid")
        return claims
