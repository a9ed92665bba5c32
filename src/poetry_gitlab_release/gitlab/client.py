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
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from poetry_gitlab_release.config.credentials import Credential, TokenKind
from poetry_gitlab_release.errors import (
    ApiError,
    AuthenticationError,
    NetworkError,
    NotFoundError,
)
from poetry_gitlab_release.gitlab.bodies import (
    MAX_ERROR_READ,
    MAX_RESPONSE_BYTES,
    BodyFactory,
    json_of,
    read_bounded,
)
from poetry_gitlab_release.gitlab.connection import Connection
from poetry_gitlab_release.gitlab.failures import (
    GraphQLResponseError,
    is_retryable,
    message_of,
    network_error,
    path_of,
    retry_after,
)
from poetry_gitlab_release.tls import other_hosts_context, ssl_context

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RATE_LIMIT_WINDOW = 60.0  # GitLab's application limits count per minute (fixed windows)
RATE_LIMIT_WAITS = (5.0, 10.0, 20.0, 30.0, 30.0, 30.0)  # 125 s in all: over two windows
MAX_REDIRECTS = 5
USER_AGENT = "poetry-gitlab-release"


class Auth(enum.Enum):
    """How the credential is presented on a given API."""

    NONE = "none"
    REST = "rest"  # PRIVATE-TOKEN / JOB-TOKEN / DEPLOY-TOKEN header
    BASIC = "basic"  # HTTP Basic: the only scheme the PyPI routes accept
    GRAPHQL = "graphql"  # Bearer; GitLab accepts neither job nor deploy tokens there


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


class GitLabClient:
    """One connection pool to one GitLab server. Use as a context manager."""

    def __init__(
        self,
        connection: Connection,
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
        self.connection = connection
        self.credential: Credential | None = connection.credential
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._on_retry = on_retry
        self._on_rate_limit = on_rate_limit
        self._clock = clock
        self._home = origin(connection.api_url)
        tls = connection.tls
        self.request_count = 0
        self._count_lock = threading.Lock()  # the client may be shared by worker threads

        def http_client(context: ssl.SSLContext) -> httpx.Client:
            return httpx.Client(
                timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
                verify=context,
                follow_redirects=False,
                headers={"User-Agent": USER_AGENT},
                transport=transport,
                trust_env=False,  # proxies/netrc from the environment must not see our tokens
            )

        # GitLab's own origin gets the client certificate and trusts the CA file alone; any
        # other origin (object storage behind a redirect, pypi.org) gets a pool with no client
        # certificate, trusting the usual bundle plus the CA file (tls.other_hosts_context).
        # Without either, one pool serves both.
        self._http = http_client(ssl_context(tls.ca_file, tls.client_cert, tls.client_cert_source))
        self._foreign_http = (
            self._http
            if tls.client_cert is None and tls.ca_file is None
            else http_client(other_hosts_context(tls.ca_file))
        )

    def __enter__(self) -> GitLabClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()
        if self._foreign_http is not self._http:
            self._foreign_http.close()

    # --- URLs and credentials --------------------------------------------------------------

    def api(self, path: str) -> str:
        return self.connection.api_url + "/" + path.lstrip("/")

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
                    read_bounded(response, MAX_ERROR_READ)
                elif not stream:
                    complete = read_bounded(response, max_bytes)
            except httpx.TransportError as exc:
                # Also a body that breaks off while we read it: retried like a failed request.
                if attempt == attempts or not is_retryable(exc):
                    raise self.network_error(exc, url) from None
                self._wait(attempt, None, f"{type(exc).__name__} on {method} {path_of(url)}")
                continue
            except httpx.DecodingError:
                raise ApiError(
                    f"{method} {path_of(url)}: the answer's body does not decode as its "
                    "Content-Encoding header says",
                    status=status,
                ) from None
            if wanted:
                if not complete:
                    raise ApiError(
                        f"{method} {path_of(url)}: the answer is larger than {max_bytes} bytes",
                        status=response.status_code,
                    )
                return response
            if status == 429 and retry and retry_after(response) is None:
                delay = self._rate_limit_delay(response, limited)
                if delay is not None:
                    limited.append(delay)
                    self._announce_rate_limit(
                        f"GitLab is rate limiting {method} {path_of(url)} (HTTP 429 without "
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
                    retry_after(response),
                    f"HTTP {response.status_code} on {method} {path_of(url)}",
                )
                continue
            raise self._api_error(method, url, response)
        raise AssertionError("unreachable")  # pragma: no cover

    def network_error(self, exc: httpx.TransportError, url: str) -> NetworkError:
        """The one-line error for a failed connection, naming this client's TLS settings."""
        with contextlib.suppress(RuntimeError):  # RuntimeError: no request attached
            url = str(exc.request.url)  # the hop that failed, maybe another origin
        tls = self.connection.tls
        given = tls.client_cert_source if tls.client_cert is not None else None
        home = origin(url) == self._home
        return network_error(exc, url, tls.repository, client_cert_source=given, home=home)

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
                raise NetworkError(f"invalid redirect URL from {path_of(url)}") from None
            if not response.is_redirect or method not in {"GET", "HEAD"}:
                return response
            location = response.headers.get("Location", "")
            response.close()
            try:
                current = urljoin(str(request.url), location)
                target = urlsplit(current)
                _ = target.port  # raises on a port that is not a number
            except ValueError:
                raise NetworkError(f"invalid redirect URL from {path_of(url)}") from None
            current_params = None
            if target.scheme not in {"http", "https"}:
                raise NetworkError(f"refusing a redirect from {path_of(url)} to a non-HTTP URL")
            if target.scheme == "http" and urlsplit(url).scheme == "https":
                raise NetworkError(
                    f"refusing a redirect from https to plain http ({target.hostname})"
                )
        raise NetworkError(f"too many redirects for {path_of(url)}")

    def _api_error(self, method: str, url: str, response: httpx.Response) -> ApiError:
        status = response.status_code
        detail = message_of(response)
        what = f"{method} {path_of(url)} answered {status}: {detail}"
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
        return json_of(response, url)

    def paginate(
        self, path: str, params: Mapping[str, Any] | None = None, *, per_page: int = 100
    ) -> Iterator[Any]:
        """Every item of an offset-paginated list, following `x-next-page` (never `x-total`)."""
        query = {**(params or {}), "per_page": per_page, "page": 1}
        while True:
            response = self.request("GET", self.api(path), params=query, expected=(200,))
            items = json_of(response, path)
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
            self.connection.graphql_url,
            auth=Auth.GRAPHQL,
            json={"query": query, "variables": dict(variables or {})},
            expected=(200,),
        )
        payload = json_of(response, "GraphQL")
        if not isinstance(payload, Mapping):
            raise ApiError("GraphQL: the answer is not a JSON object", status=response.status_code)
        errors = payload.get("errors")
        if errors:
            raise GraphQLResponseError.of(errors, response.status_code)
        return payload.get("data")
