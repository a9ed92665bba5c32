"""Bodies: responses read into memory within a bound, streamed with one-line errors, and
restartable request bodies (a retried upload streams its file again)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx

from poetry_gitlab_release.errors import ApiError
from poetry_gitlab_release.files import CHUNK_SIZE, read_chunks
from poetry_gitlab_release.gitlab.failures import network_error, path_of

MAX_RESPONSE_BYTES = 64 * 1024 * 1024  # JSON pages, simple indexes, bundles: far below this
MAX_ERROR_READ = 64 * 1024  # of an error body, enough for GitLab's {"message": ...}

BodyFactory = Callable[[], Iterable[bytes] | bytes]


def read_bounded(response: httpx.Response, max_bytes: int) -> bool:
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


def json_of(response: httpx.Response, what: str) -> Any:
    try:
        return response.json()
    except (ValueError, RecursionError):
        raise ApiError(
            f"{path_of(what)}: the answer is not JSON", status=response.status_code
        ) from None


def read_body(
    response: httpx.Response, url: str, max_bytes: int, too_large: Callable[[], Exception]
) -> bytes:
    """A streamed body read into memory, at most `max_bytes` (beyond: `too_large()` is raised);
    the response is closed either way."""
    try:
        chunks: list[bytes] = []
        size = 0
        for chunk in stream_body(response, url):
            size += len(chunk)
            if size > max_bytes:
                raise too_large()
            chunks.append(chunk)
    finally:
        response.close()
    return b"".join(chunks)


def stream_body(
    response: httpx.Response, url: str, chunk_size: int | None = None
) -> Iterator[bytes]:
    """The chunks of a streamed response; a connection that breaks off or a body that does not
    decode becomes one-line NetworkError/ApiError instead of an httpx exception."""
    try:
        yield from response.iter_bytes(chunk_size)
    except httpx.TransportError as exc:
        raise network_error(exc, url) from None
    except httpx.DecodingError:
        raise ApiError(
            f"GET {path_of(url)}: the answer's body does not decode as its Content-Encoding "
            "header says",
            status=response.status_code,
        ) from None


def file_chunks(path: Path, chunk_size: int = CHUNK_SIZE) -> BodyFactory:
    """A body factory streaming a file in chunks (constant memory), restartable for retries."""
    return lambda: read_chunks(path, chunk_size)
