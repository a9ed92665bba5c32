"""GitLab's PEP 503 simple index: fetch a package page, parse it, pick one release's files.

Every file name that comes from the index is untrusted: it becomes a path under the download
directory, so it must be a bare name (no separators, not absolute, no NUL, not `.`/`..`) with a
distribution extension (.whl, .tar.gz, .zip). A page listing anything else is rejected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import TYPE_CHECKING
from urllib.parse import unquote, urljoin, urlsplit

from poetry_gitlab_release.errors import ApiError, NotFoundError, VerificationError

if TYPE_CHECKING:
    from packaging.version import Version

    from poetry_gitlab_release.gitlab.client import GitLabClient

DIST_EXTENSIONS = (".whl", ".tar.gz", ".zip")
MAX_INDEX_BYTES = 16 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class UnsafeFileNameError(VerificationError):
    """A file name that must not become a path: it names the file and the reason."""


def normalize_name(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def name_search_term(name: str) -> str:
    """A `package_name` for GitLab's Packages API that finds every stored spelling of `name`.

    GitLab stores PyPI names as uploaded (`My_Tool`, `my.tool`) and matches `package_name` as
    `name ILIKE '%term%'` (`%` and `_` literal): the PEP 503 form `my-tool` finds neither. The
    longest run of letters and digits is in every spelling; callers keep the packages whose PEP
    503 name is equal to the one they want.
    """
    runs = re.findall(r"[a-z0-9]+", normalize_name(name))
    return max(runs, key=len) if runs else name


def check_file_name(name: str, *, extensions: tuple[str, ...] | None = DIST_EXTENSIONS) -> str:
    """Return `name` when it is a safe bare file name; raise UnsafeFileNameError otherwise."""
    shown = repr(name)
    if not name:
        raise UnsafeFileNameError("empty file name in the index")
    if "\x00" in name:
        raise UnsafeFileNameError(f"{shown}: the file name contains a NUL byte")
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise UnsafeFileNameError(f"{shown}: the file name is an absolute path")
    if "/" in name or "\\" in name:
        raise UnsafeFileNameError(f"{shown}: the file name contains a path separator")
    if name in {".", ".."} or name.startswith("."):
        raise UnsafeFileNameError(f"{shown}: the file name is a special or hidden name")
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        raise UnsafeFileNameError(f"{shown}: the file name contains a control character")
    if extensions is not None and not name.endswith(extensions):
        raise UnsafeFileNameError(
            f"{shown}: unexpected extension (only {', '.join(extensions)} are distributions)"
        )
    return name


@dataclass(frozen=True)
class IndexFile:
    """One file of a simple-index page."""

    name: str
    url: str  # absolute, without the fragment
    sha256: str | None
    requires_python: str | None = None
    yanked: bool = False


@dataclass(frozen=True)
class ReleaseFile:
    """An index file that belongs to the requested project, with its parsed version."""

    file: IndexFile
    version: Version
    version_text: str  # as written in the file name

    @property
    def name(self) -> str:
        return self.file.name


class _AnchorParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[tuple[dict[str, str | None], str]] = []
        self._current: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._current = dict(attrs)
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._current is not None:
            self.anchors.append((self._current, "".join(self._text).strip()))
            self._current = None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return (
        parts.scheme,
        (parts.hostname or "").lower(),
        parts.port or (443 if parts.scheme == "https" else 80),
    )


def parse_simple_page(html: str, page_url: str) -> list[IndexFile]:
    """The files of a PEP 503 project page. Names are validated; hashes must be sha256 hex.

    Links must stay on the page's origin: the registry serves its own files.
    """
    parser = _AnchorParser()
    parser.feed(html)
    parser.close()
    files: list[IndexFile] = []
    for attrs, text in parser.anchors:
        href = attrs.get("href")
        if not href:
            continue
        try:
            absolute = urljoin(page_url, href)
            parts = urlsplit(absolute)
            link_origin = _origin(absolute)
        except ValueError as exc:  # a bad IPv6 literal, a port that is not a number
            raise VerificationError(
                f"{text or href!r}: the index has a malformed link ({exc})"
            ) from None
        if parts.scheme not in {"http", "https"}:
            raise VerificationError(f"{text or href!r}: the index links to a {parts.scheme!r} URL")
        if link_origin != _origin(page_url):
            raise VerificationError(
                f"{text or href!r}: the index links to another server ({parts.netloc})"
            )
        # The last path segment, decoded: an encoded '/' (%2F) must be caught as a separator.
        raw_last = parts.path.rsplit("/", 1)[-1]
        name = unquote(raw_last)
        check_file_name(name)
        if text and text != name:
            check_file_name(text)
            raise VerificationError(
                f"{text!r}: the index link text does not match the file it points to ({name!r})"
            )
        sha256 = None
        fragment = parts.fragment
        if fragment:
            algorithm, _, value = fragment.partition("=")
            if algorithm == "sha256":
                value = value.lower()
                if not _SHA256.match(value):
                    raise VerificationError(f"{name}: the index gives a malformed sha256 {value!r}")
                sha256 = value
        files.append(
            IndexFile(
                name=name,
                url=absolute.split("#", 1)[0],
                sha256=sha256,
                requires_python=attrs.get("data-requires-python") or None,
                yanked="data-yanked" in attrs,
            )
        )
    return files


def parse_distribution_name(file_name: str) -> tuple[str, Version, str] | None:
    """(normalised project name, version, version text) of a wheel or sdist name, else None."""
    from packaging.utils import (
        InvalidSdistFilename,
        InvalidWheelFilename,
        parse_sdist_filename,
        parse_wheel_filename,
    )
    from packaging.version import InvalidVersion, Version

    try:
        if file_name.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(file_name)
            text = file_name[:-4].split("-")[1]
        elif file_name.endswith((".tar.gz", ".zip")):
            name, version = parse_sdist_filename(file_name)
            stem = file_name[: -len(".tar.gz")] if file_name.endswith(".tar.gz") else file_name[:-4]
            text = stem.rpartition("-")[2]
        else:
            return None
        Version(text)
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    return str(name), version, text


def select_release(
    files: list[IndexFile], project: str, version: str | None
) -> tuple[str, list[ReleaseFile]]:
    """The files of `project` at `version` (or the latest final release), all of them.

    Returns the version text used in file names and the files. Raises when nothing matches or
    when a file of the project cannot be parsed (a page we do not understand is not trusted).
    """
    from packaging.version import InvalidVersion, Version

    wanted_name = normalize_name(project)
    by_version: dict[Version, list[ReleaseFile]] = {}
    for item in files:
        parsed = parse_distribution_name(item.name)
        if parsed is None:
            raise VerificationError(
                f"{item.name}: the index lists a file whose name is not a wheel or sdist name"
            )
        name, parsed_version, text = parsed
        if normalize_name(name) != wanted_name:
            continue
        by_version.setdefault(parsed_version, []).append(ReleaseFile(item, parsed_version, text))
    if not by_version:
        raise NotFoundError(f"no files of {project} in the index", status=404)
    if version is None:
        finals = [v for v in by_version if not v.is_prerelease]
        chosen = max(finals or by_version)
    else:
        try:
            chosen = Version(version)
        except InvalidVersion:
            raise VerificationError(f"{version!r} is not a valid version") from None
        if chosen not in by_version:
            known = ", ".join(str(v) for v in sorted(by_version))
            raise NotFoundError(
                f"{project} {version} is not in the index (versions: {known})", status=404
            )
    release = sorted(by_version[chosen], key=lambda item: item.name)
    exact = [item for item in release if item.version_text == version]
    release = exact or release
    spellings = sorted({item.version_text for item in release})
    if len(spellings) > 1:
        # Signatures live under one version string (<name>/<version>/ in the generic registry);
        # files that spell an equal version differently are not one release we can vouch for.
        raise VerificationError(
            f"the index lists {project} {chosen} under several spellings "
            f"({', '.join(spellings)}): ask for one of them exactly, e.g. {project}=={spellings[0]}"
        )
    return release[0].version_text, release


def fetch_project_page(client: GitLabClient, simple_url: str, project: str) -> list[IndexFile]:
    """GET <simple_url>/<normalised name>/ with Basic auth (the only scheme PyPI routes take)."""
    from poetry_gitlab_release.gitlab.bodies import read_body
    from poetry_gitlab_release.gitlab.client import Auth, origin

    url = f"{simple_url.rstrip('/')}/{normalize_name(project)}/"
    response = client.request(
        "GET", url, auth=Auth.BASIC, headers={"Accept": "text/html"}, stream=True, expected=(200,)
    )
    body = read_body(
        response,
        url,
        MAX_INDEX_BYTES,
        lambda: ApiError(f"GET {url}: the index page is larger than 16 MiB", status=200),
    )
    final_url = str(response.request.url)
    if origin(final_url) != origin(url):
        # GitLab forwards unknown names to pypi.org: that is not this registry's release.
        raise VerificationError(
            f"the index for {project} redirected to {urlsplit(final_url).netloc}, outside GitLab "
            "(package request forwarding?); refusing files from another index"
        )
    html = body.decode(response.encoding or "utf-8", errors="replace")
    return parse_simple_page(html, final_url)
