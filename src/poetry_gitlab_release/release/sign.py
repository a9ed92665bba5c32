"""The `sign` step: one Sigstore signer, one Fulcio certificate, every artifact signed.

For each artifact it writes, beside it:
  <file>.sigstore.json        Sigstore bundle v0.3 (hashedrekord), what `sigstore verify` reads
  <file>.publish.attestation  PEP 740 attestation (DSSE over an in-toto Statement), by default
  <file>.sig, <file>.crt      with cosign_compat: base64 signature and base64 PEM certificate,
                              byte for byte what `cosign sign-blob --output-signature/-certificate`
                              writes
Artifacts are hashed in 1 MiB chunks and signed as a prehash: nothing is read whole.
The identity token never appears in a message, a file or a log line.
Transient failures of Fulcio or Rekor (429, 5xx, a refused or broken connection) are retried
with backoff (sigstore-python itself does not retry): a Rekor hiccup re-signs only the artifact
it interrupted, under the same certificate.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from poetry_gitlab_release.errors import SigningError
from poetry_gitlab_release.files import write_atomic
from poetry_gitlab_release.release.artifacts import (
    ATTESTATION_SUFFIX,
    BUNDLE_SUFFIX,
    COSIGN_CERTIFICATE_SUFFIX,
    COSIGN_SIGNATURE_SUFFIX,
    Artifact,
)
from poetry_gitlab_release.signing.material import (
    attestation_from_bundle,
    attestation_log_index,
    bundle_log_index,
    cosign_files,
    hashed,
)
from poetry_gitlab_release.signing.statement import pep740_statement
from poetry_gitlab_release.signing.trust import load_trust_config

if TYPE_CHECKING:
    from sigstore.models import Bundle, ClientTrustConfig
    from sigstore.sign import Signer

    from poetry_gitlab_release.config.credentials import Secret

SIGN_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)  # seconds before attempts 2, 3, 4 and 5
_TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})

CI_TOKEN_SNIPPET = """\
add an ID token to the job in .gitlab-ci.yml:
  id_tokens:
    SIGSTORE_ID_TOKEN:
      aud: sigstore"""


@dataclass(frozen=True)
class SignedArtifact:
    artifact: Artifact
    bundle: Path
    log_index: int | None
    attestation: Path | None = None
    attestation_log_index: int | None = None
    cosign_signature: Path | None = None
    cosign_certificate: Path | None = None


@dataclass(frozen=True)
class SignResult:
    signed: tuple[SignedArtifact, ...]
    identity: str | None  # the certificate's SAN
    issuer: str | None
    certificates: int  # Fulcio certificates requested: one for the whole release


def check_identity_token(token: Secret | None, *, in_ci: bool, now: float | None = None) -> str:
    """The raw token, after the checks that give actionable messages (never the token)."""
    if token is None:
        if in_ci:
            raise SigningError(
                "no Sigstore identity token: SIGSTORE_ID_TOKEN is not set in this job",
                hint=CI_TOKEN_SNIPPET,
            )
        raise SigningError(
            "no Sigstore identity token",
            hint="set SIGSTORE_ID_TOKEN or pass --identity-token TOKEN|@FILE "
            "(in GitLab CI: id_tokens: SIGSTORE_ID_TOKEN: aud: sigstore)",
        )
    raw = token.reveal().strip()
    claims = _jwt_claims(raw)
    if claims is None:
        raise SigningError("the Sigstore identity token is not a JWT (three base64url parts)")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if "sigstore" not in audiences:
        raise SigningError(
            f"the identity token's audience is {audience!r}, not 'sigstore'",
            hint=CI_TOKEN_SNIPPET if in_ci else "request the token with audience sigstore",
        )
    expires = claims.get("exp")
    current = time.time() if now is None else now
    if isinstance(expires, (int, float)) and expires < current:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(expires))
        raise SigningError(
            f"the Sigstore identity token expired at {when}",
            hint="GitLab ID tokens live as long as the job's timeout; sign in the job that "
            "received SIGSTORE_ID_TOKEN, early, or pass a fresh --identity-token",
        )
    return raw


def sign_artifacts(
    artifacts: Sequence[Artifact],
    token: Secret | None,
    *,
    trust_config: ClientTrustConfig | Path | None,
    in_ci: bool,
    attestations: bool = True,
    cosign_compat: bool = False,
    rekor_v1: bool = False,
    on_signed: Callable[[SignedArtifact], None] | None = None,
    on_retry: Callable[[str, float], None] | None = None,
    retry_delays: Sequence[float] = SIGN_RETRY_DELAYS,
    sleep: Callable[[float], None] = time.sleep,
) -> SignResult:
    """Sign every artifact with one signer (one key, one certificate).

    `trust_config` is a loaded ClientTrustConfig, or the path of one (None: the public
    instance), loaded only after the identity token passed its checks.

    A transient Fulcio or Rekor failure is retried after each of `retry_delays`; `on_retry`
    hears what failed and how long we wait.
    """
    from sigstore.errors import Error as SigstoreError
    from sigstore.oidc import IdentityToken
    from sigstore.sign import SigningContext

    from poetry_gitlab_release.signing.identity import certificate_facts

    if not artifacts:
        raise SigningError("there is nothing to sign", hint="run the build step first")
    raw = check_identity_token(token, in_ci=in_ci)
    if trust_config is None or isinstance(trust_config, Path):
        trust_config = load_trust_config(trust_config)
    if rekor_v1:  # a PyPI target: PyPI is not shown to accept Rekor v2 entries
        from poetry_gitlab_release.pypi.attestations import pin_rekor_v1

        pin_rekor_v1(trust_config)
    try:
        identity_token = IdentityToken(raw)
        context = SigningContext.from_trust_config(trust_config)
    except SigstoreError as exc:
        raise SigningError(f"the identity token was refused: {_scrub(exc, raw)}") from None

    signed: list[SignedArtifact] = []
    identity = issuer = None

    def retrying(what: str, action: Callable[[], Any]) -> Any:
        for delay in (*retry_delays, None):
            try:
                return action()
            except Exception as exc:
                if delay is None or not _is_transient(exc):
                    raise
                if on_retry is not None:
                    on_retry(f"{what}: {_scrub(exc, raw)}", delay)
                sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    try:
        with ExitStack() as stack:
            # Fulcio: the signer asks for its certificate when it is created.
            signer: Signer = retrying(
                "Fulcio",
                lambda: stack.enter_context(context.signer(identity_token, cache=True)),
            )
            for artifact in artifacts:
                item = retrying(
                    f"Rekor ({artifact.name})",
                    lambda artifact=artifact: _sign_one(  # type: ignore[misc]
                        signer, artifact, attestations, cosign_compat
                    ),
                )
                signed.append(item)
                if on_signed is not None:
                    on_signed(item)
            if signed:
                facts = certificate_facts(_load_bundle(signed[0].bundle).signing_certificate)
                identity, issuer = facts.identity, facts.issuer
    except SigningError:
        raise
    except SigstoreError as exc:
        raise SigningError(f"signing failed: {_scrub(exc, raw)}") from None
    # Network errors from the Fulcio and Rekor clients come as assorted types; the chain is
    # dropped (`from None`) because a library's message could quote the request.
    except Exception as exc:  # noqa: BLE001
        unreachable = _unreachable_host(exc)
        if unreachable is not None:
            raise SigningError(
                f"signing failed: cannot reach the Sigstore service at {unreachable}",
                hint="nothing was published; rerun the release when it is back",
            ) from None
        raise SigningError(f"signing failed: {type(exc).__name__}: {_scrub(exc, raw)}") from None
    return SignResult(tuple(signed), identity, issuer, certificates=1)


def _is_transient(exc: BaseException) -> bool:
    """A 429/5xx answer or a connection failure anywhere in the exception's chain."""
    import requests

    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, requests.ConnectionError | requests.Timeout):
            return True
        if isinstance(cause, requests.HTTPError) and cause.response is not None:
            return cause.response.status_code in _TRANSIENT_STATUSES
        cause = cause.__cause__ or cause.__context__
    return False


def _unreachable_host(exc: BaseException) -> str | None:
    """host:port of a connection that could not be made or broke off, if that is the failure."""
    from urllib.parse import urlsplit

    import requests

    if not isinstance(exc, requests.ConnectionError | requests.Timeout):
        return None
    request = exc.request
    url = getattr(request, "url", None)
    return urlsplit(url).netloc if isinstance(url, str) and url else "its URL"


def _sign_one(
    signer: Signer, artifact: Artifact, attestations: bool, cosign_compat: bool
) -> SignedArtifact:
    bundle = signer.sign_artifact(hashed(artifact.sha256))
    bundle_path = artifact.sidecar(BUNDLE_SUFFIX)
    bundle_json = bundle.to_json()
    write_atomic(bundle_path, bundle_json)
    result: dict[str, Any] = {
        "artifact": artifact,
        "bundle": bundle_path,
        "log_index": bundle_log_index(json.loads(bundle_json)),
    }
    if attestations and artifact.kind != "sbom":  # PEP 740 attests distributions only
        statement = pep740_statement(artifact.name, artifact.sha256)
        attestation = attestation_from_bundle(signer.sign_dsse(statement))
        attestation_path = artifact.sidecar(ATTESTATION_SUFFIX)
        write_atomic(attestation_path, json.dumps(attestation, sort_keys=True))
        result["attestation"] = attestation_path
        result["attestation_log_index"] = attestation_log_index(attestation)
    if cosign_compat:
        signature_path = artifact.sidecar(COSIGN_SIGNATURE_SUFFIX)
        certificate_path = artifact.sidecar(COSIGN_CERTIFICATE_SUFFIX)
        sig, crt = cosign_files(bundle)
        write_atomic(signature_path, sig)
        write_atomic(certificate_path, crt)
        result["cosign_signature"] = signature_path
        result["cosign_certificate"] = certificate_path
    return SignedArtifact(**result)


def _load_bundle(path: Path) -> Bundle:
    from sigstore.models import Bundle

    return Bundle.from_json(path.read_bytes())


def _jwt_claims(raw: str) -> dict[str, Any] | None:
    parts = raw.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except (binascii.Error, ValueError):
        return None
    return claims if isinstance(claims, dict) else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _scrub(exc: BaseException, secret: str) -> str:
    """One line of an exception's text, with the token (or any part of it) masked."""
    text = _first_line(exc)
    if secret:
        text = text.replace(secret, "********")
        for part in secret.split("."):
            if len(part) >= 16:
                text = text.replace(part, "********")
    return text
