"""The upload credential: a GitLab ID token exchanged for a short-lived PyPI token, or an API token.

Client side of PyPI's Trusted Publishing, as pypa/gh-action-pypi-publish's oidc-exchange.py
does it: `GET {upload origin}/_/oidc/audience` -> `{"audience": ...}` (403: disabled, 404: the
index does not support it), then `POST {upload origin}/_/oidc/mint-token` with
`{"token": <ID token>}` -> `{"token": ..., "expires": ...}`, or 422 with
`{"errors": [{"code", "description"}]}` (warehouse/oidc/views.py); the minted token is valid
900 s and each ID token (`jti`) is accepted once. After the uploads the minted token is burned
(`POST /_/oidc/burn-token`, pypi/warehouse#20197), as uv does; failing that is harmless.

In GitLab CI the ID token comes from `id_tokens: {PYPI_ID_TOKEN: {aud: pypi}}`. Its audience
and expiry are checked here before the exchange, so those mistakes get their own message.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from poetry_gitlab_release.errors import (
    AuthenticationError,
    ConfigError,
    OperationalError,
)
from poetry_gitlab_release.pypi.index import IndexConnection, IndexURLs

ID_TOKEN_VARIABLE = "PYPI_ID_TOKEN"
API_TOKEN_VARIABLE = "PYPI_API_TOKEN"
ID_TOKENS_YAML = "id_tokens: {PYPI_ID_TOKEN: {aud: pypi}}"


@dataclass(frozen=True)
class UploadCredential:
    """What authenticates the uploads. `value` never shows in repr or str."""

    kind: str  # "trusted-publishing" | "api-token"
    value: str = field(repr=False)
    expires: int | None = None

    def __str__(self) -> str:
        return f"{self.kind} credential"


class TrustedPublishingError(AuthenticationError):
    """The index refused the exchange (or the ID token cannot be exchanged)."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, status=422, hint=hint)


def token_claims(raw: str) -> dict[str, Any] | None:
    """The claims of a JWT, unverified (the index verifies it); None when it is not a JWT."""
    try:
        payload = raw.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    return claims if isinstance(claims, dict) else None


def _clock(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%H:%M:%S UTC")


def check_id_token(raw: str, *, audience: str, now: float | None = None) -> dict[str, Any]:
    """The ID token's claims when it can be exchanged for `audience`; else a ConfigError."""
    claims = token_claims(raw)
    if claims is None:
        raise ConfigError(
            f"{ID_TOKEN_VARIABLE} is not a JWT",
            hint=f"it must come from the job's `{ID_TOKENS_YAML}`",
        )
    aud = claims.get("aud")
    if aud != audience:
        shown = aud if isinstance(aud, str) else json.dumps(aud)
        raise ConfigError(
            f"{ID_TOKEN_VARIABLE} has audience {shown!r}, but the index expects {audience!r}",
            hint=f"set `aud: {audience}` (one audience) on the job's {ID_TOKEN_VARIABLE} id_token",
        )
    expires = claims.get("exp")
    current = time.time() if now is None else now
    if isinstance(expires, (int, float)) and expires <= current:
        raise ConfigError(
            f"{ID_TOKEN_VARIABLE} expired at {_clock(expires)}",
            hint="GitLab ID tokens live as long as the job's timeout: publish in the job that "
            "received it",
        )
    return claims


def read_audience(connection: IndexConnection) -> str:
    urls = connection.urls
    response = connection.get(urls.audience)
    if response.status_code == 403:
        raise TrustedPublishingError(
            f"{urls.host} has Trusted Publishing disabled",
            hint=f"use an API token ({API_TOKEN_VARIABLE}) for this index",
        )
    if response.status_code == 404:
        raise TrustedPublishingError(
            f"{urls.host} does not support Trusted Publishing (no /_/oidc/audience)",
            hint=f"use an API token ({API_TOKEN_VARIABLE}) for this index",
        )
    try:
        audience = response.json()["audience"] if response.status_code == 200 else None
    except (ValueError, KeyError, TypeError):
        audience = None
    if not isinstance(audience, str):
        raise OperationalError(
            f"{urls.host} answered /_/oidc/audience with HTTP {response.status_code}, not an "
            "audience",
            hint="the index may be down or misconfigured; try again later",
        )
    return audience


def _publisher_hint(urls: IndexURLs, claims: dict[str, Any], project: str) -> str:
    path = claims.get("project_path", "?")
    ref_uri = str(claims.get("ci_config_ref_uri", ""))
    ci_file = ref_uri.split("//", 1)[1].rsplit("@", 1)[0] if "//" in ref_uri else "?"
    environment = claims.get("environment")
    where = f" and environment {environment}" if environment else ""
    return (
        f"add a GitLab trusted publisher for project {path}, CI file {ci_file}{where} at "
        f"{urls.publishing_settings(project)}"
    )


def exchange(
    connection: IndexConnection, raw_id_token: str, *, project: str, now: float | None = None
) -> UploadCredential:
    """Audience, checks, then the one mint-token exchange this ID token allows."""
    urls = connection.urls
    audience = read_audience(connection)
    claims = check_id_token(raw_id_token, audience=audience, now=now)
    response = connection.post_json(urls.mint_token, {"token": raw_id_token})
    if response.is_redirect:
        raise TrustedPublishingError(
            f"{urls.host} redirected the token exchange to "
            f"{response.headers.get('Location', '?')}: the ID token was not sent there",
            hint="give the index's upload URL itself",
        )
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code == 200 and isinstance(body, dict) and body.get("token"):
        expires = body.get("expires")
        return UploadCredential(
            "trusted-publishing",
            str(body["token"]),
            int(expires) if isinstance(expires, (int, float)) else None,
        )
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list) or not errors:
        raise OperationalError(
            f"{urls.host} answered the token exchange with HTTP {response.status_code}",
            hint="the index may be down or misconfigured; try again later",
        )
    reasons = "; ".join(
        f"{e.get('code')}: {e.get('description')}" for e in errors if isinstance(e, dict)
    )
    codes = {e.get("code") for e in errors if isinstance(e, dict)}
    if "invalid-publisher" in codes:
        hint = _publisher_hint(urls, claims, project)
    elif "invalid-reuse-token" in codes:
        hint = "each GitLab ID token can be exchanged once: rerun the job for a fresh one"
    elif "invalid-token" in codes:
        hint = (
            f"the index could not verify {ID_TOKEN_VARIABLE}; PyPI trusts ID tokens from "
            "https://gitlab.com only"
        )
    elif "invalid-payload" in codes and "issuer" in reasons:
        hint = (
            f"{urls.host} trusts ID tokens from https://gitlab.com only (not {claims.get('iss')})"
        )
    else:
        hint = None
    raise TrustedPublishingError(
        f"{urls.host} refused the Trusted Publishing exchange: {reasons}", hint=hint
    )


def burn(connection: IndexConnection, credential: UploadCredential) -> bool:
    """Invalidate a minted token once the uploads are done; False if the index cannot."""
    if credential.kind != "trusted-publishing":
        return False
    try:
        response = connection.post_json(connection.urls.burn_token, {"token": credential.value})
    except OperationalError:
        return False
    return response.status_code == 200


def resolve_credential(
    connection: IndexConnection,
    *,
    id_token: str | None,
    api_token: str | None,
    project: str,
    in_ci: bool,
) -> UploadCredential:
    """PYPI_ID_TOKEN (Trusted Publishing) first, else PYPI_API_TOKEN, else a ConfigError."""
    if id_token:
        return exchange(connection, id_token, project=project)
    if api_token:
        return UploadCredential("api-token", api_token)
    where = "the release job" if in_ci else "the environment"
    raise ConfigError(
        f"no PyPI credential: {ID_TOKEN_VARIABLE} is not set in {where}",
        hint=f"add `{ID_TOKENS_YAML}` to the release job (Trusted Publishing), or set "
        f"{API_TOKEN_VARIABLE} to an API token for an index without it",
    )
