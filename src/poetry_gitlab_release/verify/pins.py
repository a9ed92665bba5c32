"""Pinned signers: trust on first use, recorded in `gitlab-verify.lock` next to `poetry.lock`.

The first successful verification of a package records who signed it; every later one must
find the same signer, the same immutable GitLab ids and the same presence of signatures, or
it fails until the change is accepted explicitly (`--accept-signer-change`).

The file is TOML, one `[[packages]]` table per package, and reuses PEP 751's vocabulary
(`pylock.toml`'s `[[packages.attestation-identities]]`: a table per identity with a required
`kind` and the keys of that kind's PEP 740 Trusted Publisher object, e.g. GitLab's
`repository`, `workflow_filepath`, `environment`). To those we add what only a GitLab
certificate carries: `issuer`, the SAN pattern (`identity`, the ref replaced by `*`), and the
immutable `project-id` / `namespace-id`.

```toml
version = 1

[[packages]]
name = "hello-package"
signed = true

[[packages.attestation-identities]]
kind = "GitLab"
repository = "demo-group/hello-package"
workflow_filepath = ".gitlab-ci.yml"
issuer = "https://gitlab.com"
identity = "https://gitlab.com/demo-group/hello-package//.gitlab-ci.yml@refs/tags/*"
project-id = "100"
namespace-id = "10"
```

Writes are atomic (a temporary file in the same directory, fsync, rename), so an interrupted
run leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from pathlib import Path
from typing import Any

from poetry_gitlab_release.errors import ConfigError
from poetry_gitlab_release.files import write_atomic
from poetry_gitlab_release.signing.claims import ClaimPolicy, GitLabClaims
from poetry_gitlab_release.signing.results import FileResult, Verdict

PINS_FILE = "gitlab-verify.lock"
PINS_VERSION = 1
ACCEPT_FLAG = "--accept-signer-change"

_HEADER = (
    "# Signers trusted on first use by `poetry gitlab-verify`. Commit this file: a later\n"
    "# verification fails when a package's signer, its GitLab project or namespace id, or the\n"
    f"# presence of its signatures changes, until the change is accepted with {ACCEPT_FLAG}.\n"
)

_REF_IN_SAN = re.compile(r"@refs/(tags|heads)/.*$")


def normalize(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def san_pattern(identity: str) -> str:
    """The SAN with its ref generalised: `...//.gitlab-ci.yml@refs/tags/*`.

    Every release has its own tag, so the pin keeps the project path, the CI configuration and
    the kind of ref (tag or branch), not the ref itself.
    """
    return _REF_IN_SAN.sub(lambda m: f"@refs/{m.group(1)}/*", identity)


def _key(name: str) -> Any:
    """An optional string field, written as `name` in the pins file."""
    return field(default=None, metadata={"key": name})


@dataclass(frozen=True)
class Signer:
    """One attestation identity (PEP 751 `packages.attestation-identities` entry)."""

    kind: str
    repository: str | None = _key("repository")
    workflow_filepath: str | None = _key("workflow_filepath")
    environment: str | None = _key("environment")
    issuer: str | None = _key("issuer")
    identity: str | None = _key("identity")  # SAN pattern
    project_id: str | None = _key("project-id")
    namespace_id: str | None = _key("namespace-id")
    extra: Mapping[str, str] = field(default_factory=dict)  # other publisher keys (PyPI)

    @classmethod
    def _keys(cls) -> list[tuple[str, str]]:
        """(attribute, key in the pins file) of each optional string field."""
        return [(f.name, f.metadata["key"]) for f in fields(cls) if "key" in f.metadata]

    def to_table(self) -> dict[str, str]:
        table = {"kind": self.kind}
        for attribute, key in self._keys():
            value = getattr(self, attribute)
            if value is not None:
                table[key] = value
        table.update(sorted(self.extra.items()))
        return table

    @classmethod
    def from_table(cls, table: Mapping[str, Any], where: str) -> Signer:
        kind = table.get("kind")
        if not isinstance(kind, str) or not kind:
            raise ConfigError(f"{where}: an attestation identity has no `kind`")
        known = {key for _, key in cls._keys()} | {"kind"}
        values = {}
        for attribute, key in cls._keys():
            value = table.get(key)
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{where}: `{key}` must be a string")
            values[attribute] = value
        extra = {str(k): str(v) for k, v in table.items() if k not in known}
        return cls(kind=kind, extra=extra, **values)

    def describe(self) -> str:
        parts = [self.identity or self.repository or self.kind]
        if self.project_id:
            parts.append(f"project id {self.project_id}")
        if self.namespace_id:
            parts.append(f"namespace id {self.namespace_id}")
        return ", ".join(parts)


def gitlab_signer(claims: GitLabClaims) -> Signer:
    """The pin for a package signed by a GitLab CI job, from its verified certificate."""
    repository = None
    workflow = None
    identity = claims.identity
    if identity and "//" in identity.removeprefix("https://"):
        path_part, _, rest = identity.removeprefix("https://").partition("//")
        repository = path_part.split("/", 1)[1] if "/" in path_part else None
        workflow = rest.rsplit("@", 1)[0] or None
    return Signer(
        kind="GitLab",
        repository=repository,
        workflow_filepath=workflow,
        environment=claims.environment,
        issuer=claims.issuer,
        identity=san_pattern(identity) if identity else None,
        project_id=claims.project_id,
        namespace_id=claims.namespace_id,
    )


@dataclass(frozen=True)
class Pin:
    name: str
    signed: bool
    signers: tuple[Signer, ...] = ()

    def to_table(self) -> dict[str, Any]:
        table: dict[str, Any] = {"name": self.name, "signed": self.signed}
        if self.signers:
            table["attestation-identities"] = [s.to_table() for s in self.signers]
        return table


class PinStatus(str, Enum):
    NEW = "pinned"  # first use: recorded now
    SAME = "matches pin"
    CHANGED = "signer changed"
    ACCEPTED = "change accepted"
    UNPINNED = "not pinned"  # pinning is off


@dataclass(frozen=True)
class PinCheck:
    status: PinStatus
    changes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status is not PinStatus.CHANGED

    def message(self, path: Path) -> str:
        return (
            f"signer changed since it was pinned in {path.name}: {'; '.join(self.changes)} "
            f"(if this change is expected, run again with {ACCEPT_FLAG})"
        )


def compare(pinned: Pin, observed: Pin) -> list[str]:
    """What changed between the pin and what was verified now, one phrase per change."""
    if pinned.signed and not observed.signed:
        return ["the package was signed and is now unsigned"]
    if not pinned.signed and observed.signed:
        who = observed.signers[0].describe() if observed.signers else "someone"
        return [f"the package was unsigned and is now signed by {who}"]
    changes: list[str] = []
    for index, new in enumerate(observed.signers):
        old = pinned.signers[index] if index < len(pinned.signers) else None
        if old is None:
            changes.append(f"a new signer {new.describe()}")
            continue
        for label, attribute in (
            ("kind", "kind"),
            ("issuer", "issuer"),
            ("identity", "identity"),
            ("project id", "project_id"),
            ("namespace id", "namespace_id"),
            ("repository", "repository"),
            ("environment", "environment"),
        ):
            was, now = getattr(old, attribute), getattr(new, attribute)
            if was != now:
                changes.append(f"{label} is {now or 'missing'}, pinned {was or 'missing'}")
        for key in sorted(set(old.extra) | set(new.extra)):
            if old.extra.get(key) != new.extra.get(key):
                changes.append(
                    f"{key} is {new.extra.get(key) or 'missing'}, "
                    f"pinned {old.extra.get(key) or 'missing'}"
                )
    return changes


class PinStore:
    """The pins of one file; load, check/record in memory, then `save()` once."""

    def __init__(self, path: Path, pins: Mapping[str, Pin] | None = None) -> None:
        self.path = path
        self._pins: dict[str, Pin] = dict(pins or {})
        self._dirty = False

    @classmethod
    def load(cls, path: Path) -> PinStore:
        import tomlkit
        from tomlkit.exceptions import TOMLKitError

        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls(path)
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            document = tomlkit.parse(text).unwrap()
        except TOMLKitError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
        version = document.get("version")
        if version != PINS_VERSION:
            raise ConfigError(
                f"{path}: version is {version!r}, this plugin reads version {PINS_VERSION}",
                hint="upgrade poetry-gitlab-release, or move the file away to pin again",
            )
        pins: dict[str, Pin] = {}
        packages = document.get("packages", [])
        if not isinstance(packages, list):
            raise ConfigError(f"{path}: `packages` must be an array of tables")
        for number, table in enumerate(packages, start=1):
            where = f"{path}: packages entry {number}"
            if not isinstance(table, dict):
                raise ConfigError(f"{where} is not a table")
            name, signed = table.get("name"), table.get("signed")
            if not isinstance(name, str) or not name or not isinstance(signed, bool):
                raise ConfigError(f"{where} needs a `name` and a boolean `signed`")
            identities = table.get("attestation-identities", [])
            if not isinstance(identities, list) or not all(isinstance(i, dict) for i in identities):
                raise ConfigError(f"{where}: `attestation-identities` must be an array of tables")
            signers = tuple(Signer.from_table(i, f"{where} ({name})") for i in identities)
            pins[normalize(name)] = Pin(name=name, signed=signed, signers=signers)
        return cls(path, pins)

    def get(self, name: str) -> Pin | None:
        return self._pins.get(normalize(name))

    def __len__(self) -> int:
        return len(self._pins)

    def check(self, observed: Pin, *, accept_change: bool = False) -> PinCheck:
        """Compare with the pin; record on first use, or on a change when accepted."""
        pinned = self.get(observed.name)
        if pinned is None:
            self._record(observed)
            return PinCheck(PinStatus.NEW)
        changes = compare(pinned, observed)
        if not changes:
            return PinCheck(PinStatus.SAME)
        if accept_change:
            self._record(observed)
            return PinCheck(PinStatus.ACCEPTED, tuple(changes))
        return PinCheck(PinStatus.CHANGED, tuple(changes))

    def _record(self, pin: Pin) -> None:
        self._pins[normalize(pin.name)] = pin
        self._dirty = True

    def render(self) -> str:
        import tomlkit

        document = tomlkit.document()
        document.add("version", PINS_VERSION)
        packages = tomlkit.aot()
        for key in sorted(self._pins):
            packages.append(tomlkit.item(self._pins[key].to_table()))
        document.add("packages", packages)
        return _HEADER + tomlkit.dumps(document)

    def save(self) -> bool:
        """Write the file if anything was recorded; True when it was written."""
        if not self._dirty:
            return False
        write_atomic(self.path, self.render())
        self._dirty = False
        return True


def default_pins_path(directory: Path) -> Path | None:
    """`gitlab-verify.lock` in a Poetry project's directory (beside poetry.lock), else None."""
    candidate = directory / PINS_FILE
    if candidate.is_file():
        return candidate
    if (directory / "poetry.lock").is_file() or (directory / "pyproject.toml").is_file():
        return candidate
    return None


def observed_gitlab_pin(name: str, claims: Iterable[GitLabClaims | None]) -> Pin:
    """What a verification saw for one package: signed by these certificates, or unsigned."""
    signers: list[Signer] = []
    for claim in claims:
        if claim is None:
            continue
        signer = gitlab_signer(claim)
        if signer not in signers:
            signers.append(signer)
    return Pin(name=name, signed=bool(signers), signers=tuple(signers))


def claim_policy_with_ids(
    base: ClaimPolicy,
    pinned: Pin | None,
    *,
    project_id: str | None,
    namespace_id: str | None,
    where: str,
    accept_change: bool,
) -> ClaimPolicy:
    """The user's policy, then the pinned ids, then the ids GitLab gives the project now.

    An explicit --project-id/--namespace-id wins; a pin comes next, unless its change is being
    accepted (it is about to be replaced); what GitLab says about the project being verified
    fills the rest.
    """
    policy = base
    signer = pinned.signers[0] if pinned and pinned.signers else None
    if signer is not None and signer.kind == "GitLab" and not accept_change:
        policy = policy.with_defaults(
            project_id=(signer.project_id, f"pinned in {PINS_FILE}"),
            namespace_id=(signer.namespace_id, f"pinned in {PINS_FILE}"),
        )
    return policy.with_defaults(
        project_id=(project_id, f"the id GitLab gives project {where}"),
        namespace_id=(namespace_id, f"the namespace id of project {where}"),
    )


def apply_pin(
    results: Sequence[FileResult], store: PinStore, name: str, *, accept_change: bool
) -> tuple[list[FileResult], PinCheck | None]:
    """Compare a verified release with its pin; a change fails every file of it.

    Only a release whose every file verified is compared (and pinned on first use): a failure
    is reported as itself and never becomes the trusted signer.
    """
    if not results or not all(result.ok for result in results):
        return list(results), None
    check = store.check(
        observed_gitlab_pin(name, [result.claims for result in results]),
        accept_change=accept_change,
    )
    if check.status is not PinStatus.CHANGED:
        return list(results), check
    message = check.message(store.path)
    return [replace(r, verdict=Verdict.FAILED, reason=message) for r in results], check
