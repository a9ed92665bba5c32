"""TLS in one place: verifying contexts, client certificates (mutual TLS), and the diagnosis
of a failed handshake into one actionable line.

No heavy import at module level: httpx is imported only to build a default context.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from poetry_gitlab_release.errors import ConfigError, TLSError


@dataclass(frozen=True)
class TLSConfig:
    """The TLS material for one server, and `repository`: Poetry's name for it, which the
    advice in TLS errors names (certificates.<repository>.cert)."""

    ca_file: Path | None = None
    client_cert: Path | None = None
    client_cert_source: str = "client-cert"  # where client_cert came from, for messages
    repository: str = "gitlab"


def ssl_context(
    ca_file: Path | None, client_cert: Path | None = None, client_cert_source: str = "client-cert"
) -> ssl.SSLContext:
    """A verifying context: the given CA bundle, else SSL_CERT_FILE/SSL_CERT_DIR, else certifi;
    with `client_cert` (one PEM file: certificate and private key) loaded for mutual TLS."""
    context = _verifying_context(ca_file)
    if client_cert is not None:
        load_client_certificate(context, client_cert, client_cert_source)
    return context


def other_hosts_context(ca_file: Path | None) -> ssl.SSLContext:
    """For hosts other than GitLab's own (object storage behind a redirect, pypi.org with
    `--lock --install`): the usual bundle (SSL_CERT_FILE/SSL_CERT_DIR, else certifi) and, added
    to it, the CA file given for GitLab. A private CA often signs GitLab's object storage too,
    while public hosts must keep working. No client certificate: it is GitLab's only."""
    context = _verifying_context(None)
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load CA file {str(ca_file)!r}: {exc}") from None
    return context


def _verifying_context(ca_file: Path | None) -> ssl.SSLContext:
    if ca_file is not None:
        try:
            return ssl.create_default_context(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load CA file {str(ca_file)!r}: {exc}") from None
    try:
        import httpx

        return httpx.create_ssl_context()  # reads SSL_CERT_FILE / SSL_CERT_DIR, else certifi
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load the CA bundle named by SSL_CERT_FILE or SSL_CERT_DIR: {exc}",
            hint="fix or unset the variable, or pass --ca-file",
        ) from None


MAX_CLIENT_CERT_FILE = 1024 * 1024  # a certificate chain and its key: a few kilobytes


class _NoPasswordError(Exception):
    """Raised by the password callback: an encrypted key is refused instead of prompted for."""


def _no_password() -> bytes:
    raise _NoPasswordError


def load_client_certificate(context: Any, path: Path, where: str) -> None:
    """`context.load_cert_chain(path)` with a one-line ConfigError naming the file and `where`.

    The file holds the certificate (and any intermediates) and its unencrypted private key, in
    PEM, as Poetry's `client-cert` expects. An encrypted key is refused, never prompted for. The
    file's content never appears in a message.
    """
    try:
        context.load_cert_chain(str(path), password=_no_password)
    except _NoPasswordError:
        raise _client_cert_error(
            path, where, "its private key is encrypted; use an unencrypted key"
        ) from None
    except ssl.SSLError as exc:
        raise _client_cert_error(path, where, _client_cert_problem(path, exc)) from None
    except OSError as exc:
        raise _client_cert_error(path, where, exc.strerror or type(exc).__name__) from None


def _client_cert_error(path: Path, where: str, problem: str) -> ConfigError:
    return ConfigError(f"invalid client certificate {str(path)!r} from {where}: {problem}")


def _client_cert_problem(path: Path, exc: Exception) -> str:
    """What is wrong with a PEM file that load_cert_chain refused, judged by its markers only."""
    if getattr(exc, "reason", None) == "KEY_VALUES_MISMATCH":
        return "the private key does not belong to the certificate"
    try:
        with path.open("rb") as handle:
            head = handle.read(MAX_CLIENT_CERT_FILE)
    except OSError:
        head = b""
    if b"-----BEGIN CERTIFICATE-----" not in head:
        return "no PEM certificate in it (expected the certificate and its private key, PEM)"
    if b"PRIVATE KEY-----" not in head:
        return "no private key in it (put the certificate and its private key in one PEM file)"
    if b"ENCRYPTED" in head:
        return "its private key is encrypted; use an unencrypted key"
    return "not a usable PEM certificate and private key"


# Alerts a server sends about the client's certificate (OpenSSL's reason codes).
_CERTIFICATE_REQUIRED = "TLSV13_ALERT_CERTIFICATE_REQUIRED"
_HANDSHAKE_FAILURE = "SSLV3_ALERT_HANDSHAKE_FAILURE"  # TLS 1.2's answer to a missing one
_CLIENT_CERT_REFUSED = frozenset(
    {
        "TLSV1_ALERT_UNKNOWN_CA",
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "SSLV3_ALERT_CERTIFICATE_EXPIRED",
        "SSLV3_ALERT_CERTIFICATE_REVOKED",
        "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
        "TLSV1_ALERT_ACCESS_DENIED",
    }
)


def _ssl_reason(exc: BaseException) -> str | None:
    """OpenSSL's reason code of the ssl.SSLError behind a transport error, if there is one."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            reason = getattr(cause, "reason", None)
            return reason if isinstance(reason, str) else None
        cause = cause.__cause__ or cause.__context__
    return None


def client_cert_alert(exc: BaseException) -> bool:
    reason = _ssl_reason(exc)
    return reason in _CLIENT_CERT_REFUSED or reason in {_CERTIFICATE_REQUIRED, _HANDSHAKE_FAILURE}


def _alert_text(reason: str) -> str:
    """'TLSV1_ALERT_UNKNOWN_CA' -> 'unknown ca', the alert's own name."""
    return reason.split("_ALERT_", 1)[-1].replace("_", " ").lower()


def _tls_reason(exc: BaseException) -> str:
    """The verifier's own words (e.g. 'unable to get local issuer certificate'), if any."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError) and cause.verify_message:
            return str(cause.verify_message)
        cause = cause.__cause__ or cause.__context__
    text = str(exc)
    marker = "certificate verify failed: "
    if marker in text:
        return text.split(marker, 1)[1].split(" (_ssl.c", 1)[0].strip()
    return ""


def tls_failure(exc: BaseException) -> bool:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return True
        cause = cause.__cause__ or cause.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


def tls_error(
    exc: BaseException,
    host: str,
    repository: str = "<repository>",
    *,
    client_cert_source: str | None = None,
    home: bool = True,
) -> TLSError | None:
    """The one-line TLSError for a failed connection to `host`, with the advice that fits what
    the server said; None when the failure is not about TLS."""
    reason = _ssl_reason(exc)
    given = client_cert_source is not None and home
    how_to_give = (
        "pass --client-cert PEM, set GITLAB_RELEASE_CLIENT_CERT, or set Poetry's "
        f"certificates.{repository}.client-cert: one PEM file with the certificate and its "
        "private key"
    )
    if reason == _CERTIFICATE_REQUIRED and not home:
        return TLSError(
            f"{host} asked for a TLS client certificate",
            hint="it is presented to GitLab's own origin only, never to another one behind a "
            "redirect",
        )
    if reason == _CERTIFICATE_REQUIRED and not given:
        return TLSError(
            f"{host} asked for a TLS client certificate and none was given", hint=how_to_give
        )
    if reason == _HANDSHAKE_FAILURE and not given:
        return TLSError(
            f"the TLS handshake with {host} failed (handshake failure)",
            hint="if the server requires a client certificate, " + how_to_give,
        )
    if (
        reason is not None
        and given
        and (reason in _CLIENT_CERT_REFUSED or reason == _CERTIFICATE_REQUIRED)
    ):
        return TLSError(
            f"{host} refused the TLS client certificate from {client_cert_source} "
            f"({_alert_text(reason)})",
            hint="it must be signed by a CA the server trusts, be valid now, and be allowed "
            "for client authentication",
        )
    if tls_failure(exc):
        reason = _tls_reason(exc)
        return TLSError(
            f"TLS verification failed for {host}" + (f": {reason}" if reason else ""),
            hint=(
                "if your GitLab uses a private certificate authority, pass --ca-file PEM, set "
                f"GITLAB_RELEASE_CA_FILE, set Poetry's certificates.{repository}.cert, "
                "or set SSL_CERT_FILE"
            ),
        )
    return None
