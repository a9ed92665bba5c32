"""The HTTP client every GitLab call goes through.

- Credentials are presented the way GitLab accepts them on each API (`Auth`), and only to the
  origin they belong to: redirects are followed by hand, and a hop to another origin (object
  storage, a CDN) carries no credential header at all.
- Retries with exponential backoff on 429, 5xx and connection errors, honouring Retry-After.
  Upload bodies come from a factory, so a retried upload streams the file again from the start.
- TLS: a CA file from the settings, else the system/certifi default; verification is never off.
  A TLS client certificate (mutual TLS) is presented to GitLab's own origin only: hops to
  another origin go through a second connection pool whose context holds no client certificate.
- Errors become one-line GitLabError subclasses; tokens never appear in their text.
- Bodies read into memory are bounded (MAX_RESPONSE_BYTES, MAX_ERROR_READ): a hostile or broken
  server cannot make us allocate without limit. Streamed responses are the caller's to bound.
"""

from __future__ import annotations

import base64
import contextlib
import enum
import random
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from poetry_gitlab_release.config.settings import Credential, Settings, TokenKind
from poetry_gitlab_release.errors import (
    ApiError,
    AuthenticationError,
    NetworkError,
    NotFoundError,
)
from poetry_gitlab_release.files import CHUNK_SIZE, read_chunks
from poetry_gitlab_release.tls import client_cert_alert, ssl_context, tls_error, tls_failure

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RATE_LIMIT_WINDOW = 60.0  # GitLab's application limits count per minute (fixed windows)
RATE_LIMIT_WAITS = (5.0, 10.0, 20.0, 30.0, 30.0, 30.0)  # 125 s in all: over two windows
MAX_REDIRECTS = 5
MAX_ERROR_BODY = 300
MAX_RESPONSE_BYTES = 64 * 1024 * 1024  # JSON pages, simple indexes, bundles: far below this
MAX_ERROR_READ = 64 * 1024  # of an error body, enough for GitLab's {"message": ...}
USER_AGENT = "poetry-gitlab-release"


class Auth(enum.Enum):
    """How the credential is presented on a given API."""

    NONE = "none"
    REST = "rest"  # PRIVATE-TOKEN / JOB-TOKEN / DEPLOY-TOKEN header
    BASIC = "basic"  # HTTP Basic: the only scheme the PyPI routes accept
    GRAPHQL = "graphql"  # Bearer; GitLab accepts neither job nor deploy tokens there


BodyFactory = Callable[[], Iterable[bytes] | bytes]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_delay)
        backoff: float = self.base_delay * (2 ** (attempt - 1))
        return min(backoff * (0.5 + random.random() / 2), self.max_delay)


def origin(url: str | httpx.URL) -> tuple[str, str, int | None]:
    parts = urlsplit(str(url))
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default_port


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _message_of(response: httpx.Response) -> str:
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


class GitLabClient:
    """One connection pool to one GitLab server. Use as a context manager."""

    def __init__(
        self,
        settings: Settings,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
        on_retry: Callable[[str, float], None] | None = None,
        on_rate_limit: Callable[[str, float], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`on_retry` hears of each retry; `on_rate_limit` (else `on_retry`) of each wait for
        a rate limit, a one-line message worth showing by default since it may last minutes."""
        self.settings = settings
        self.credential: Credential | None = settings.credential
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._on_retry = on_retry
        self._on_rate_limit = on_rate_limit
        self._clock = clock
        self._home = origin(settings.api_url)
        self.request_count = 0
        self._count_lock = threading.Lock()  # the client may be shared by worker threads
        self._client_cert_source = settings.source_of("client-cert")

        def http_client(context: ssl.SSLContext) -> httpx.Client:
            return httpx.Client(
                timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
                verify=context,
                follow_redirects=False,
                headers={"User-Agent": USER_AGENT},
                transport=transport,
                trust_env=False,  # proxies/netrc from the environment must not see our tokens
            )

        # GitLab's own origin gets the client certificate; any other origin (object storage
        # behind a redirect) gets a pool whose context has none, so that it is never offered
        # there. Without a client certificate one pool serves both.
        self._http = http_client(
            ssl_context(settings.ca_file, settings.client_cert, self._client_cert_source)
        )
        self._foreign_http = (
            self._http
            if settings.client_cert is None
            else http_client(ssl_context(settings.ca_file))
        )

    def __enter__(self) -> GitLabClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()
        if self._foreign_http is not self._http:
            self._foreign_http.close()

    # --- URLs and credentials --------------------------------------------------------------

    def api(self, path: str) -> str:
        return self.settings.api_url + "/" + path.lstrip("/")

    def _credential_headers(self, auth: Auth, url: str) -> dict[str, str]:
        if auth is Auth.NONE or self.credential is None or origin(url) != self._home:
            return {}
        if auth is Auth.REST:
            return self.credential.rest_headers()
        if auth is Auth.BASIC:
            username, password = self.credential.basic_auth()
            pair = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
            return {"Authorization": f"Basic {pair}"}
        if self.credential.kind is not TokenKind.PERSONAL:
            raise AuthenticationError(
                f"GitLab does not accept a {self.credential.description} on the GraphQL API",
                status=401,
                hint="use a personal, project or group access token with the read_api scope",
            )
        return {"Authorization": f"Bearer {self.credential.token.reveal()}"}

    # --- requests -------------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        auth: Auth = Auth.REST,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        body: BodyFactory | None = None,
        stream: bool = False,
        expected: Iterable[int] = (200, 201, 204),
        retry: bool = True,
        max_bytes: int = MAX_RESPONSE_BYTES,
    ) -> httpx.Response:
        """Send with retries and hand-followed redirects; raise on an unexpected status.

        With stream=True the caller must close the returned response. Without it, the body is
        read here, and a body over `max_bytes` (after decompression) is an ApiError.
        """
        expected_codes = set(expected)
        attempts = self.retry.attempts if retry else 1
        limited: list[float] = []  # waits for a 429 without Retry-After, see _rate_limit_delay
        attempt = 0
        while attempt < attempts:
            attempt += 1
            status = 0
            try:
                response = self._send_following_redirects(
                    method,
                    url,
                    auth=auth,
                    params=params,
                    headers=headers,
                    json=json,
                    body=body,
                )
                status = response.status_code
                wanted = status in expected_codes
                complete = True
                if not wanted:
                    _read_bounded(response, MAX_ERROR_READ)
                elif not stream:
                    complete = _read_bounded(response, max_bytes)
            except httpx.TransportError as exc:
                # Also a body that breaks off while we read it: retried like a failed request.
                if attempt == attempts or not _is_retryable_transport_error(exc):
                    raise self.network_error(exc, url) from None
                self._wait(attempt, None, f"{type(exc).__name__} on {method} {_path(url)}")
                continue
            except httpx.DecodingError:
                raise ApiError(
                    f"{method} {_path(url)}: the answer's body does not decode as its "
                    "Content-Encoding header says",
                    status=status,
                ) from None
            if wanted:
                if not complete:
                    raise ApiError(
                        f"{method} {_path(url)}: the answer is larger than {max_bytes} bytes",
                        status=response.status_code,
                    )
                return response
            if status == 429 and retry and _retry_after(response) is None:
                delay = self._rate_limit_delay(response, limited)
                if delay is not None:
                    limited.append(delay)
                    self._announce_rate_limit(
                        f"GitLab is rate limiting {method} {_path(url)} (HTTP 429 without "
                        f"Retry-After): waiting {delay:.0f}s before retrying, "
                        f"{sum(limited):.0f}s of at most {sum(RATE_LIMIT_WAITS):.0f}s",
                        delay,
                    )
                    self._sleep(delay)
                    attempt -= 1  # a rate-limit wait is not a failed attempt
                    continue
            if response.status_code in RETRY_STATUSES and attempt < attempts:
                self._wait(
                    attempt,
                    _retry_after(response),
                    f"HTTP {response.status_code} on {method} {_path(url)}",
                )
                continue
            raise self._api_error(method, url, response)
        raise AssertionError("unreachable")  # pragma: no cover

    def network_error(self, exc: httpx.TransportError, url: str) -> NetworkError:
        """The one-line error for a failed connection, naming this client's TLS settings."""
        with contextlib.suppress(RuntimeError):  # RuntimeError: no request attached
            url = str(exc.request.url)  # the hop that failed, maybe another origin
        return _network_error(
            exc,
            url,
            self.settings.repository,
            client_cert_source=(
                self._client_cert_source if self.settings.client_cert is not None else None
            ),
            home=origin(url) == self._home,
        )

    def _rate_limit_delay(self, response: httpx.Response, waited: list[float]) -> float | None:
        """How long to wait after a 429 that says nothing of when to come back; None: give up.

        GitLab's application limiter (e.g. 600 requests a minute on a group's projects) answers
        429 without Retry-After (lib/api/helpers/rate_limiter.rb) and counts in fixed windows of
        up to a minute, so quick exponential retries all land in the same window. The waits
        grow (RATE_LIMIT_WAITS) and add up to over two minutes: at least one new window begins.
        A RateLimit-Reset header (Rack::Attack's, a Unix time) is used when present.
        """
        if len(waited) >= len(RATE_LIMIT_WAITS):
            return None
        reset = response.headers.get("RateLimit-Reset", "")
        if reset.isdigit():
            until = int(reset) - self._clock() + 1
            if 0 < until <= RATE_LIMIT_WINDOW + 1:
                return float(until)
        return RATE_LIMIT_WAITS[len(waited)]

    def _announce_rate_limit(self, message: str, delay: float) -> None:
        if self._on_rate_limit is not None:
            self._on_rate_limit(message, delay)
        elif self._on_retry is not None:
            self._on_retry(message, delay)

    def _wait(self, attempt: int, retry_after: float | None, what: str) -> None:
        delay = self.retry.delay(attempt, retry_after)
        if self._on_retry is not None:
            self._on_retry(what, delay)
        self._sleep(delay)

    def _send_following_redirects(
        self,
        method: str,
        url: str,
        *,
        auth: Auth,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        json: Any,
        body: BodyFactory | None,
    ) -> httpx.Response:
        """The final response of the redirect chain, its body not yet read (a stream)."""
        current = url
        current_params = params
        for _ in range(MAX_REDIRECTS + 1):
            all_headers = {**(headers or {}), **self._credential_headers(auth, current)}
            content = body() if body is not None else None
            http = self._http if origin(current) == self._home else self._foreign_http
            try:
                request = http.build_request(
                    method,
                    current,
                    params=current_params,
                    headers=all_headers,
                    json=json,
                    content=content,
                )
                with self._count_lock:
                    self.request_count += 1
                # httpx parses a Location header even when it does not follow it.
                response = http.send(request, stream=True)
            except httpx.InvalidURL:
                raise NetworkError(f"invalid redirect URL from {_path(url)}") from None
            if not response.is_redirect or method not in {"GET", "HEAD"}:
                return response
            location = response.headers.get("Location", "")
            response.close()
            try:
                current = urljoin(str(request.url), location)
                target = urlsplit(current)
                _ = target.port  # raises on a port that is not a number
            except ValueError:
                raise NetworkError(f"invalid redirect URL from {_path(url)}") from None
            current_params = None
            if target.scheme not in {"http", "https"}:
                raise NetworkError(f"refusing a redirect from {_path(url)} to a non-HTTP URL")
            if target.scheme == "http" and urlsplit(url).scheme == "https":
                raise NetworkError(
                    f"refusing a redirect from https to plain http ({target.hostname})"
                )
        raise NetworkError(f"too many redirects for {_path(url)}")

    def _api_error(self, method: str, url: str, response: httpx.Response) -> ApiError:
        status = response.status_code
        detail = _message_of(response)
        what = f"{method} {_path(url)} answered {status}: {detail}"
        if status in {401, 403}:
            who = self.credential.description if self.credential else "no token"
            return AuthenticationError(
                what, status=status, hint=f"using a {who}" if self.credential else who
            )
        if status == 404:
            return NotFoundError(
                what, status=status, hint="not found, or not visible to this token"
            )
        return ApiError(what, status=status)

    # --- conveniences ---------------------------------------------------------------------

    def get_json(
        self, path_or_url: str, params: Mapping[str, Any] | None = None, *, auth: Auth = Auth.REST
    ) -> Any:
        url = path_or_url if "://" in path_or_url else self.api(path_or_url)
        response = self.request("GET", url, params=params, auth=auth, expected=(200,))
        return _json(response, url)

    def paginate(
        self, path: str, params: Mapping[str, Any] | None = None, *, per_page: int = 100
    ) -> Iterator[Any]:
        """Every item of an offset-paginated list, following `x-next-page` (never `x-total`)."""
        query = {**(params or {}), "per_page": per_page, "page": 1}
        while True:
            response = self.request("GET", self.api(path), params=query, expected=(200,))
            items = _json(response, path)
            if not isinstance(items, list):
                raise ApiError(f"GET {path}: expected a JSON list", status=response.status_code)
            yield from items
            next_page = response.headers.get("x-next-page", "").strip()
            if not next_page:
                return
            if not next_page.isdecimal() or int(next_page) <= query["page"]:
                raise ApiError(
                    f"GET {path}: invalid x-next-page header {next_page[:20]!r}",
                    status=response.status_code,
                )
            query["page"] = int(next_page)

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> Any:
        response = self.request(
            "POST",
            self.settings.graphql_url,
            auth=Auth.GRAPHQL,
            json={"query": query, "variables": dict(variables or {})},
            expected=(200,),
        )
        payload = _json(response, "GraphQL")
        if not isinstance(payload, Mapping):
            raise ApiError("GraphQL: the answer is not a JSON object", status=response.status_code)
        errors = payload.get("errors")
        if errors:
            raise GraphQLResponseError.of(errors, response.status_code)
        return payload.get("data")


def _read_bounded(response: httpx.Response, max_bytes: int) -> bool:
    """Read a streamed body into the response, at most `max_bytes`; False if it was longer.

    Closes the stream either way; a transport error while reading propagates. Afterwards
    .content/.text/.json() work as usual (on the truncated body when it was too long).
    """
    chunks: list[bytes] = []
    size = 0
    complete = True
    try:
        for chunk in response.iter_bytes():
            if size + len(chunk) > max_bytes:
                chunks.append(chunk[: max_bytes - size])
                complete = False
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        response.close()
    response._content = b"".join(chunks)  # what httpx's own read() would store
    return complete


def _json(response: httpx.Response, what: str) -> Any:
    try:
        return response.json()
    except (ValueError, RecursionError):
        raise ApiError(
            f"{_path(what)}: the answer is not JSON", status=response.status_code
        ) from None


def _path(url: str) -> str:
    """A URL without its query string, for messages (queries may carry search terms)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else url


def _is_retryable_transport_error(exc: httpx.TransportError) -> bool:
    if isinstance(exc, httpx.ConnectError) and tls_failure(exc):
        return False
    if client_cert_alert(exc):  # TLS 1.3 reports it on the first read: as final as a refusal
        return False
    return isinstance(exc, httpx.TransportError)


def _network_error(
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


def stream_body(
    response: httpx.Response, url: str, chunk_size: int | None = None
) -> Iterator[bytes]:
    """The chunks of a streamed response; a connection that breaks off or a body that does not
    decode becomes one-line NetworkError/ApiError instead of an httpx exception."""
    try:
        yield from response.iter_bytes(chunk_size)
    except httpx.TransportError as exc:
        raise _network_error(exc, url) from None
    except httpx.DecodingError:
        raise ApiError(
            f"GET {_path(url)}: the answer's body does not decode as its Content-Encoding "
            "header says",
            status=response.status_code,
        ) from None


def file_chunks(path: Path, chunk_size: int = CHUNK_SIZE) -> BodyFactory:
    """A body factory streaming a file in chunks (constant memory), restartable for retries."""
    return lambda: read_chunks(path, chunk_size)
