"""Which pipeline a row shows (`--ref`) and which rows are shown (`--exclude`, `--failed-only`)."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from poetry_gitlab_release.errors import UsageError
from poetry_gitlab_release.pipelines.model import ProjectRow, Snapshot


class RefKind(str, Enum):
    ANY = "any"  # the newest pipeline on any ref
    DEFAULT = "default"  # the latest pipeline of the default branch's head commit
    NAMED = "named"  # the newest pipeline of one branch or tag


@dataclass(frozen=True)
class RefSelector:
    kind: RefKind
    name: str | None = None

    @property
    def label(self) -> str | None:
        """How the snapshot records it: None, "default" or the branch name."""
        if self.kind is RefKind.ANY:
            return None
        if self.kind is RefKind.DEFAULT:
            return "default"
        return self.name


def parse_ref(text: str | None) -> RefSelector:
    """None or "" -> any ref; "default" -> the default branch; else a branch or tag name.

    A branch literally named "default" is reached as "refs/heads/default".
    """
    if text is None or not text.strip():
        return RefSelector(RefKind.ANY)
    value = text.strip()
    if value == "default":
        return RefSelector(RefKind.DEFAULT)
    for prefix in ("refs/heads/", "refs/tags/"):
        if value.startswith(prefix):
            value = value[len(prefix) :]
            break
    if not value or any(char.isspace() or char in "~^:?*[\\" for char in value):
        raise UsageError(f"invalid --ref {text!r}", hint="give a branch or tag name, or 'default'")
    return RefSelector(RefKind.NAMED, value)


def parse_excludes(values: Iterable[str]) -> tuple[str, ...]:
    """`--exclude a,b --exclude 'c/*'` -> ("a", "b", "c/*"); blanks dropped."""
    patterns: list[str] = []
    for value in values:
        for part in value.split(","):
            pattern = part.strip().strip("/")
            if pattern:
                patterns.append(pattern)
    return tuple(patterns)


def is_excluded(row: ProjectRow, group_path: str, patterns: Sequence[str]) -> bool:
    """A pattern matches a project's name, its path, its full path or its path in the group.

    Matching is case-insensitive and glob-aware (`*`, `?`, `[...]`); a pattern naming a
    subgroup (`infra` or `group/infra`) also excludes every project below it.
    """
    if not patterns:
        return False
    relative = row.relative_path(group_path)
    candidates = {
        row.name.lower(),
        row.full_path.rsplit("/", 1)[-1].lower(),
        row.full_path.lower(),
        relative.lower(),
    }
    for raw in patterns:
        pattern = raw.lower()
        for candidate in candidates:
            if fnmatch.fnmatchcase(candidate, pattern):
                return True
        for path in (row.full_path.lower(), relative.lower()):
            parents = path.split("/")[:-1]
            for depth in range(1, len(parents) + 1):
                if fnmatch.fnmatchcase("/".join(parents[:depth]), pattern):
                    return True
    return False


def apply_filters(
    snapshot: Snapshot,
    *,
    excludes: Sequence[str] = (),
    failed_only: bool = False,
    include_archived: bool = False,
) -> Snapshot:
    rows = [
        row
        for row in snapshot.rows
        if (include_archived or not row.archived)
        and not is_excluded(row, snapshot.group_path, excludes)
        and (not failed_only or row.status == "failed")
    ]
    return snapshot.with_rows(sorted(rows, key=lambda row: row.full_path.lower()))
