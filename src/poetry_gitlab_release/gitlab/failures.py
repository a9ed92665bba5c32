"""How an HTTP failure becomes one line: GitLab's message, Retry-After, which transport
errors are worth a retry, and what a failed connection means (TLS advice from tls.py)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from poetry_gitlab_release.errors import ApiError, NetworkError
from poetry_gitlab_release.tls import client_cert_alert, tls_error, tls_failure

MAX_ERROR_BODY = 300


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def message_of(response: httpx.Response) -> str:
    """GitLab's error message ({"message": ...} or {"error": ...}), shortened to one line."""
    if "html" in response.headers.get("Content-Type", "").lower():
        # A proxy's or GitLab's error page: its title says it all, the markup says nothing.
        title = re.search(r"<title[^>]*>(.*?)</title", response.text, re.IGNORECASE | re.DOTALL)
        return " ".join((title.group(1) if title else "an HTML error page").split())[
            :MAX_ERROR_BODY
        ]
    try:
        body: Any = response.json()
    except (ValueError, RecursionError):
        text = response.text.strip()
    else:
        if isinstance(body, Mapping):
            message = body.get("message")
            if isinstance(message, Mapping) and message.get("error"):
                message = message["error"]  # the application limiter's {"message": {"error": ...}}
            text = str(message or body.get("error_description") or body.get("error") or body)
        else:
            text = str(body)
    text = " ".join(text.split())
    return text[:MAX_ERROR_BODY] + ("..." if len(text) > MAX_ERROR_BODY else "")


def path_of(url: str) -> str:
    """A URL without its query string, for messages (queries may carry search terms)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else url


def is_retryable(exc: httpx.TransportError) -> bool:
    if isinstance(exc, httpx.ConnectError) and tls_failure(exc):
        return False
    if client_cert_alert(exc):  # TLS 1.3 reports it on the first read: as final as a refusal
        return False
    return isinstance(exc, httpx.TransportError)


def network_error(
    exc: httpx.TransportError,
    url: str,
    repository: str = "<repository>",
    *,
    client_cert_source: str | None = None,
    home: bool = True,
) -> NetworkError:
    host = urlsplit(url).netloc
    tls = tls_error(exc, host, repository, client_cert_source=client_cert_source, home=home)
    if tls is not None:
        return tls
    if isinstance(exc, httpx.TimeoutException):
        return NetworkError(f"timed out talking to {host}")
    if isinstance(exc, httpx.ConnectError):
        return NetworkError(f"cannot connect to {host}", hint="check --host and the network")
    if isinstance(exc, httpx.ReadError | httpx.RemoteProtocolError):
        return NetworkError(f"the connection to {host} broke off ({type(exc).__name__})")
    return NetworkError(f"connection to {host} failed: {type(exc).__name__}")


@dataclass(frozen=True)
class GraphQLProblem:
    """One entry of a GraphQL answer's `errors`: its message and `extensions.code`, if any."""

    message: str
    code: str | None = None


class GraphQLResponseError(ApiError):
    """A GraphQL answer with `errors`: every one of them is kept (`problems`), so that a caller
    can tell a schema this GitLab does not have from a real failure. The message shows the
    first, shortened, and how many more there are."""

    def __init__(self, problems: tuple[GraphQLProblem, ...], status: int) -> None:
        first = problems[0].message if problems else "an empty errors list"
        text = first if len(first) <= MAX_ERROR_BODY else first[:MAX_ERROR_BODY] + "..."
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"GraphQL error: {text}{more}", status=status)
        self.problems = problems

    @classmethod
    def of(cls, errors: object, status: int) -> GraphQLResponseError:
        entries = errors if isinstance(errors, list) else [errors]
        problems = []
        for entry in entries:
            message: Any = entry.get("message", entry) if isinstance(entry, Mapping) else entry
            extensions = entry.get("extensions") if isinstance(entry, Mapping) else None
            code = extensions.get("code") if isinstance(extensions, Mapping) else None
            problems.append(
                GraphQLProblem(
                    " ".join(str(message).split()), code if isinstance(code, str) else None
                )
            )
        return cls(tuple(problems), status)
