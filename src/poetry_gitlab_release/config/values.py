"""How each kind of setting value is read and checked: strings, booleans, paths, URLs (and the
transport they may use), repository names, client certificates, `@FILE` secret references.

Each parser takes the raw value and `where` it came from (an option, a variable, the pyproject
table) and returns the value or raises a one-line ConfigError naming that source.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from poetry_gitlab_release.errors import ConfigError
from poetry_gitlab_release.tls import load_client_certificate


def as_str(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"invalid value {value!r} from {where}: expected a non-empty string")
    return value.strip()


def as_bool(value: object, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off", ""}:
            return False
    raise ConfigError(f"invalid value {value!r} from {where}: expected true or false")


def as_path(value: object, where: str) -> Path:
    text = str(value) if isinstance(value, Path) else as_str(value, where)
    if "\x00" in text:
        raise ConfigError(f"invalid path {text!r} from {where}: it contains a NUL character")
    try:
        return Path(text).expanduser()
    except RuntimeError:  # ~user that does not exist, or no home directory
        raise ConfigError(f"invalid path {text!r} from {where}: cannot expand '~'") from None


def as_existing_file(value: object, where: str) -> Path:
    path = as_path(value, where)
    try:
        found = path.is_file()
    except OSError as exc:
        raise ConfigError(f"invalid value {str(path)!r} from {where}: {exc.strerror}") from None
    if not found:
        raise ConfigError(f"invalid value {str(path)!r} from {where}: no such file")
    return path


def as_client_cert(value: object, where: str) -> Path:
    path = as_existing_file(value, where)
    import ssl

    load_client_certificate(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), path, where)
    return path


def redact_userinfo(url: str) -> str:
    """The URL with anything before '@' in its authority replaced, for error messages."""
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    return scheme + sep + authority + slash + path if sep else url


def as_url(value: object, where: str) -> str:
    text = as_str(value, where)
    if "://" not in text:
        text = "https://" + text  # glab accepts a bare host name in GITLAB_HOST
    problem = None
    try:
        parts = urlsplit(text)
    except ValueError as exc:  # e.g. "Invalid IPv6 URL"
        raise ConfigError(f"invalid URL {redact_userinfo(text)!r} from {where}: {exc}") from None
    if any(char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F for char in text):
        problem = "it contains spaces or control characters"
    elif parts.scheme not in {"http", "https"}:
        problem = "the scheme must be https (or http for a local server)"
    elif not parts.hostname:
        problem = "there is no host name"
    elif parts.username or parts.password:
        problem = "credentials do not belong in the URL; use --token or GITLAB_TOKEN"
    elif parts.query or parts.fragment:
        problem = "a server URL has no query or fragment"
    else:
        try:
            _ = parts.port
        except ValueError:
            problem = "the port is not a number from 1 to 65535"
    if problem:
        raise ConfigError(f"invalid URL {redact_userinfo(text)!r} from {where}: {problem}")
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


REPOSITORY_NAME = re.compile(r"^[a-z][a-z-]*$")


def as_repository_name(value: object, where: str) -> str:
    text = as_str(value, where)
    if not REPOSITORY_NAME.match(text):
        # Poetry maps POETRY_REPOSITORIES_<NAME>_URL only for names without digits or '_'.
        raise ConfigError(
            f"invalid repository name {text!r} from {where}: use lower-case letters and '-' "
            "(Poetry cannot address other names through environment variables)"
        )
    return text


MAX_SECRET_FILE = 16 * 1024  # a token is a few dozen bytes, an OIDC token a few kilobytes


def read_file_reference(value: str, where: str) -> str:
    """`@path` reads a secret from a file, so that it stays out of shell history."""
    if not value.startswith("@"):
        return value
    path = as_path(value[1:], where)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_SECRET_FILE + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"cannot read {where} from {str(path)!r}: {reason}") from None
    if len(raw) > MAX_SECRET_FILE:
        raise ConfigError(f"{where} file {str(path)!r} is too large for a token")
    try:
        content = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"{where} file {str(path)!r} is not UTF-8 text") from None
    if not content:
        raise ConfigError(f"{where} file {str(path)!r} is empty")
    return content


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_transport(
    url: str, where: str, allow_insecure_http: bool, risk: str = "tokens would travel unencrypted"
) -> None:
    """Refuse plain http:// to anything but loopback unless explicitly allowed."""
    parts = urlsplit(url)
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback(parts.hostname or ""):
        raise ConfigError(
            f"refusing plain http:// for {url!r} from {where}: {risk}; "
            "use https:// or pass --allow-insecure-http"
        )
