"""The stand-in's package index: projects, releases, files, and the legacy upload's checks.

The upload follows warehouse/forklift/legacy.py `file_upload`, in its order and with its
texts (each refusal is `_exc_with_message`: the message is also the HTTP reason phrase):
- no or unknown credentials: 403 `Invalid or non-existent authentication information. See
  {help}#invalid-auth for more information.`; an expired macaroon: 403
  `Invalid API Token: token is expired` (warehouse/macaroons/caveats `Expiration`; the
  `Invalid API Token: ...` wrapping is what uploads report, warehouse#9017, #15587);
- `protocol_version` other than 1: `Unknown protocol version.`; missing form fields;
  `Upload payload does not have a file.`;
- a project that does not exist and a non-user identity (a minted token): `Non-user
  identities cannot create new projects. ...`; a token for another project: 403
  `The given token isn't allowed to upload to project '{name}'. See ...`;
- the file name and extension (`_validate_filename`), the digests (`The digest supplied does
  not match a digest calculated from the uploaded file.`);
- `_is_duplicate_file`: the same name and content is accepted as a no-op (200), the same name
  with other content is `File already exists ('{filename}', with blake2_256 hash '{h}').
  See {help}#file-name-reuse for more information.`;
- then (pypi/warehouse#19727, kept after the duplicate check by #20260) new files in a
  release created more than 14 days ago: `Uploading new files to releases older than 14 days
  is not allowed.`;
- `Only one sdist may be uploaded per release.`, `Invalid distribution file. {why}`, the sdist
  and wheel name normalisation (`Filename {f!r} is invalid, should be {e!r}.`,
  `Start filename for {project!r} with {prefix!r}.`);
- `attestations` (sandbox/pypi/integrity.py): `Invalid attestations supplied during upload:
  {why}`.
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from typing import Any

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from sandbox.pypi.integrity import AttestationRefusedError, verify_attestations
from sandbox.pypi.oidc import UploadToken

MAXIMUM_AGE_FOR_NEW_UPLOADS_DAYS = 14
HELP_URL = "https://pypi.org/help/"
_DIST_FILE_RE = re.compile(r".+?(?P<extension>\.(tar\.gz|zip|whl))$", re.IGNORECASE)
_EXTENSIONS = {"sdist": {".tar.gz", ".zip"}, "bdist_wheel": {".whl"}}


class UploadError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class StoredFile:
    filename: str
    content: bytes
    packagetype: str
    python_version: str
    requires_python: str | None
    sha256: str
    md5: str
    blake2_256: str
    uploaded_at: float
    provenance: dict[str, Any] | None = None

    @property
    def path(self) -> str:
        """files.pythonhosted.org's layout: blake2 split 2/2/rest, then the name."""
        h = self.blake2_256
        return f"/packages/{h[:2]}/{h[2:4]}/{h[4:]}/{self.filename}"


@dataclass
class Release:
    version: str
    created: float
    summary: str | None = None
    requires_python: str | None = None
    files: list[StoredFile] = field(default_factory=list)


@dataclass
class Project:
    name: str
    releases: dict[str, Release] = field(default_factory=dict)

    @property
    def normalized(self) -> str:
        return canonicalize_name(self.name)


@dataclass
class UploadForm:
    fields: dict[str, list[str]]
    filename: str | None
    content: bytes | None
    content_type: str | None

    def get(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None


def _digests(content: bytes) -> dict[str, str]:
    return {
        "md5": hashlib.md5(content, usedforsecurity=False).hexdigest(),
        "sha256": hashlib.sha256(content).hexdigest(),
        "blake2_256": hashlib.blake2b(content, digest_size=32).hexdigest(),
    }


def _valid_dist(filename: str, content: bytes) -> tuple[bool, str | None]:
    """warehouse/forklift/legacy.py `_is_valid_dist_file`, for wheels and .tar.gz sdists."""
    if filename.endswith((".zip", ".whl")):
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                names = archive.namelist()
                if filename.endswith(".whl"):
                    try:
                        name, version, _ = filename.split("-", 2)
                    except ValueError:
                        return False, "Unable to parse name and version from wheel filename"
                    target = f"{name}-{version}.dist-info/WHEEL"
                    if target not in names:
                        return False, f"WHEEL not found at {target}"
        except zipfile.BadZipFile:
            return False, "File is not a zipfile"
    elif filename.endswith(".tar.gz"):
        try:
            with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as tar:
                names = tar.getnames()
                top = _common_prefix(names)
                if top in (".", "/", ""):
                    return False, "Incorrect number of top-level directories in sdist"
                target = f"{top}/PKG-INFO"
                if target not in names:
                    return False, f"PKG-INFO not found at {target}"
        except (tarfile.TarError, EOFError, OSError):
            return False, "File is not a tarfile"
    return True, None


def _common_prefix(names: list[str]) -> str:
    tops = {name.split("/", 1)[0] for name in names}
    return tops.pop() if len(tops) == 1 else ""


class PackageIndex:
    """Projects and their files; `upload` applies warehouse's checks in warehouse's order."""

    def __init__(self, *, help_url: str = HELP_URL, trusted_root_json: str | None = None) -> None:
        self.help_url = help_url
        self.trusted_root_json = trusted_root_json
        self.projects: dict[str, Project] = {}
        self.uploads = 0  # files stored (no-op duplicates not counted)
        self._lock = threading.Lock()

    def project(self, name: str) -> Project | None:
        return self.projects.get(canonicalize_name(name))

    def add_project(self, name: str) -> Project:
        with self._lock:
            return self.projects.setdefault(canonicalize_name(name), Project(name))

    def find_file(self, filename: str) -> tuple[Project, Release, StoredFile] | None:
        for project in self.projects.values():
            for release in project.releases.values():
                for stored in release.files:
                    if stored.filename == filename:
                        return project, release, stored
        return None

    def age_release(self, name: str, version: str, days: float) -> None:
        """Pretend the release was created `days` ago (for the 14-day rule)."""
        project = self.project(name)
        if project is None or version not in project.releases:
            raise KeyError(f"{name} {version} is not on the stand-in")
        project.releases[version].created = time.time() - days * 86400

    # -- upload ---------------------------------------------------------------------------
    def upload(self, form: UploadForm, identity: UploadToken | None) -> bool:
        """Store one file; False when it was already there (a no-op). Raises UploadError."""
        if identity is None:
            raise UploadError(
                403,
                "Invalid or non-existent authentication information. "
                f"See {self.help_url}#invalid-auth for more information.",
            )
        now = time.time()
        if identity.expires_at is not None and not (
            identity.not_before <= now < identity.expires_at
        ):
            raise UploadError(403, "Invalid API Token: token is expired")
        if (form.get("protocol_version") or "1") != "1":
            raise UploadError(400, "Unknown protocol version.")
        name, version = form.get("name") or "", form.get("version") or ""
        for field_name, value, description in (
            ("metadata_version", form.get("metadata_version"), None),
            ("name", name, "Name"),
            ("version", version, "Version"),
            ("filetype", form.get("filetype"), None),
        ):
            if not value:
                if description:
                    raise UploadError(
                        400,
                        f"'' is an invalid value for {description}. Error: This field is "
                        "required. See https://packaging.python.org/specifications/core-metadata"
                        " for more information.",
                    )
                raise UploadError(
                    400, f"Invalid value for {field_name}. Error: This field is required."
                )
        try:
            parsed_version = Version(version)
        except InvalidVersion:
            raise UploadError(
                400,
                f"{version!r} is an invalid value for Version. Error: Start and end with a "
                "letter or numeral containing only ASCII numeric and '.', '_' and '-'. See "
                "https://packaging.python.org/specifications/core-metadata for more "
                "information.",
            ) from None
        filetype = form.get("filetype") or ""
        if form.content is None or form.filename is None:
            raise UploadError(400, "Upload payload does not have a file.")
        with self._lock:
            return self._store(form, identity, name, str(parsed_version), filetype, now)

    def _store(
        self,
        form: UploadForm,
        identity: UploadToken,
        name: str,
        version: str,
        filetype: str,
        now: float,
    ) -> bool:
        assert form.content is not None and form.filename is not None
        project = self.projects.get(canonicalize_name(name))
        if project is None:
            if identity.publisher is not None:
                raise UploadError(
                    400,
                    "Non-user identities cannot create new projects. This was probably caused "
                    "by successfully using a pending publisher but specifying the project name "
                    "incorrectly (either in the publisher or in your project's metadata). "
                    "Please ensure that both match. "
                    "See: https://docs.pypi.org/trusted-publishers/troubleshooting/",
                )
            project = self.projects.setdefault(canonicalize_name(name), Project(name))
        if canonicalize_name(identity.project) != project.normalized:
            raise UploadError(
                403,
                f"The given token isn't allowed to upload to project '{project.name}'. "
                f"See {self.help_url}#project-name for more information.",
            )
        filename = form.filename
        if "/" in filename or "\\" in filename:
            raise UploadError(400, "Cannot upload a file with '/' or '\\' in the name.")
        match = _DIST_FILE_RE.match(filename)
        if match is None:
            raise UploadError(
                400,
                "Invalid file extension: Use .tar.gz, .whl or .zip extension. See "
                "https://www.python.org/dev/peps/pep-0527 and https://peps.python.org/pep-0715/"
                " for more information",
            )
        if match.group("extension") not in _EXTENSIONS.get(filetype, set()):
            raise UploadError(
                400,
                f"Invalid file extension: Extension {match.group('extension')} is invalid for "
                f"filetype {filetype}. See https://www.python.org/dev/peps/pep-0527 for more "
                "information.",
            )
        if not form.content_type or form.content_type.startswith("image/"):
            raise UploadError(400, "Invalid distribution file.")
        digests = _digests(form.content)
        for digest_name in ("md5", "sha256", "blake2_256"):
            given = form.get(f"{digest_name}_digest")
            if given and given.lower() != digests[digest_name]:
                raise UploadError(
                    400,
                    "The digest supplied does not match a digest calculated from the uploaded "
                    "file.",
                )
        existing = self.find_file(filename)
        if existing is not None:
            stored = existing[2]
            if stored.sha256 == digests["sha256"] and stored.blake2_256 == digests["blake2_256"]:
                return False
            raise UploadError(
                400,
                f"File already exists ({filename!r}, with blake2_256 hash "
                f"{digests['blake2_256']!r}). See {self.help_url}#file-name-reuse for more "
                "information.",
            )
        release = project.releases.get(version)
        if release is not None and now - release.created > MAXIMUM_AGE_FOR_NEW_UPLOADS_DAYS * 86400:
            raise UploadError(
                400,
                f"Uploading new files to releases older than {MAXIMUM_AGE_FOR_NEW_UPLOADS_DAYS} "
                "days is not allowed.",
            )
        if (
            filetype == "sdist"
            and release is not None
            and any(f.packagetype == "sdist" for f in release.files)
        ):
            raise UploadError(400, "Only one sdist may be uploaded per release.")
        valid, why = _valid_dist(filename, form.content)
        if not valid:
            raise UploadError(400, f"Invalid distribution file. {why}")
        self._check_filename(project, filename, filetype, version)
        provenance = None
        if "attestations" in form.fields:
            try:
                provenance = verify_attestations(
                    form.get("attestations") or "",
                    identity.publisher,
                    filename,
                    digests["sha256"],
                    trusted_root_json=self.trusted_root_json,
                )
            except AttestationRefusedError as exc:
                raise UploadError(
                    400, f"Invalid attestations supplied during upload: {exc}"
                ) from None
        if release is None:
            release = project.releases[version] = Release(version, now)
        release.summary = release.summary or form.get("summary")
        release.requires_python = release.requires_python or form.get("requires_python")
        release.files.append(
            StoredFile(
                filename=filename,
                content=form.content,
                packagetype=filetype,
                python_version=form.get("pyversion") or "source",
                requires_python=form.get("requires_python"),
                sha256=digests["sha256"],
                md5=digests["md5"],
                blake2_256=digests["blake2_256"],
                uploaded_at=now,
                provenance=provenance,
            )
        )
        self.uploads += 1
        return True

    def _check_filename(self, project: Project, filename: str, filetype: str, version: str) -> None:
        expected_prefix = project.normalized.replace("-", "_")
        if filetype == "sdist":
            try:
                file_name, _ = parse_sdist_filename(filename)
            except InvalidSdistFilename:
                raise UploadError(
                    400, f"Invalid source distribution filename: {filename}"
                ) from None
            if file_name != project.normalized:
                raise UploadError(
                    400, f"Start filename for {project.name!r} with {expected_prefix!r}."
                )
            expected = f"{expected_prefix}-{version}.tar.gz"
            if filename.endswith(".tar.gz") and filename != expected:
                raise UploadError(400, f"Filename {filename!r} is invalid, should be {expected!r}.")
        else:
            try:
                wheel_name, _, _, _ = parse_wheel_filename(filename)
            except InvalidWheelFilename as exc:
                raise UploadError(400, str(exc)) from None
            if wheel_name != project.normalized or filename.split("-", 1)[0] != expected_prefix:
                raise UploadError(
                    400, f"Start filename for {project.name!r} with {expected_prefix!r}."
                )
