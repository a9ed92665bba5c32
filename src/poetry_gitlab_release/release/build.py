"""The `build` step: wheel and sdist with Poetry's own builder, into the dist directory.

- The in-project `.venv` is created or reused (`virtualenvs.in-project`: the only place a
  GitLab runner can cache), and its interpreter is the build's executable, as `poetry build`.
- The version is `--release-version`, else CI_COMMIT_TAG (`v1.2.3` -> `1.2.3`), else the
  project's own. Project URLs are filled from the GitLab project URL when the project declares
  none. Both are stamped in memory on the `Poetry` object; the sdist gets a stamped copy of
  pyproject.toml (so that building from it gives the same metadata), while the user's
  pyproject.toml is never written.
- Reproducible: with SOURCE_DATE_EPOCH set, poetry-core fixes every timestamp, and the
  stamped pyproject.toml is added with the same normalised metadata as any other file.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from poetry_gitlab_release.errors import BuildError, ConfigError
from poetry_gitlab_release.release.artifacts import (
    SIGNATURE_SUFFIXES,
    Artifact,
    artifact_paths,
    load_artifacts,
    normalize_name,
)

if TYPE_CHECKING:
    from cleo.io.io import IO
    from poetry.poetry import Poetry


@dataclass(frozen=True)
class ReleaseVersion:
    value: str
    source: str  # "--release-version", "CI_COMMIT_TAG" or "pyproject.toml"


@dataclass(frozen=True)
class BuildResult:
    name: str  # PEP 503 normalised
    version: ReleaseVersion
    artifacts: tuple[Artifact, ...]
    venv: Path | None
    stamped_urls: Mapping[str, str] = field(default_factory=dict)


def parse_version(text: str, where: str) -> str:
    """A PEP 440 version in its normal form; a leading `v` is accepted (`v1.2.3` -> `1.2.3`)."""
    from packaging.version import InvalidVersion, Version

    try:
        version = Version(text.strip())
    except InvalidVersion:
        raise ConfigError(
            f"{where} {text!r} is not a PEP 440 version (like 1.2.3, v1.2.3 or 1.2.3rc1)",
            hint="tag releases as vX.Y.Z, or pass --release-version",
        ) from None
    if version.epoch:
        # GitLab's generic registry takes versions matching \A(?!.*\.\.)[\w+.-]+\z
        # (Gitlab::Regex generic_package_version_regex): no `!`, so the signatures of an
        # epoch release could not be published beside it.
        raise ConfigError(
            f"{where} {text!r} has a PEP 440 epoch ({version.epoch}!), which GitLab's generic "
            "package registry refuses in a version: its signatures could not be published",
            hint="release a version without an epoch; nothing was built, signed or uploaded",
        )
    return str(version)


def resolve_version(
    explicit: str | None, commit_tag: str | None, project_version: str
) -> ReleaseVersion:
    if explicit:
        return ReleaseVersion(parse_version(explicit, "--release-version"), "--release-version")
    if commit_tag:
        return ReleaseVersion(parse_version(commit_tag, "CI_COMMIT_TAG"), "CI_COMMIT_TAG")
    return ReleaseVersion(
        parse_version(project_version, "the version in pyproject.toml"), "pyproject.toml"
    )


def default_project_urls(project_url: str | None) -> dict[str, str]:
    """The URLs a GitLab project offers: home, source, issues."""
    if not project_url:
        return {}
    base = project_url.rstrip("/")
    return {"Homepage": base, "Source": base, "Issues": f"{base}/-/issues"}


def stamp_pyproject(text: str, version: str, urls: Mapping[str, str]) -> str:
    """pyproject.toml with `version` and, when given, project URLs; formatting kept (tomlkit)."""
    import tomlkit

    document = tomlkit.parse(text)
    project: Any = document.get("project")
    tool_poetry: Any = document.get("tool", {}).get("poetry")
    dynamic = list(project.get("dynamic", [])) if project is not None else []
    if project is not None and "version" not in dynamic:
        project["version"] = version
    elif tool_poetry is not None:
        tool_poetry["version"] = version
    else:
        raise BuildError("pyproject.toml has neither a [project] nor a [tool.poetry] table")
    if urls:
        table = tomlkit.table()
        for label, url in urls.items():
            table[label] = url
        if project is not None and "urls" not in dynamic:
            project["urls"] = table
        elif tool_poetry is not None:
            tool_poetry["urls"] = table
    return tomlkit.dumps(document)


def release_identity(
    poetry: Poetry, explicit: str | None, commit_tag: str | None
) -> tuple[str, ReleaseVersion]:
    """The normalised package name and the release version, as every step computes them."""
    version = resolve_version(explicit, commit_tag, poetry.package.version.to_string())
    return normalize_name(poetry.package.name), version


def build_release(
    poetry: Poetry,
    io: IO,
    *,
    dist_dir: Path,
    version: ReleaseVersion,
    project_url: str | None,
    create_venv: bool = True,
) -> BuildResult:
    """Build sdist and wheel of `version` into `dist_dir`; returns them with their sha256."""
    if not poetry.is_package_mode:
        raise BuildError("this project is in non-package mode: there is nothing to build")
    _require_in_process_build(poetry)
    package = poetry.package
    name = normalize_name(package.name)
    urls = {} if package.urls else default_project_urls(project_url)

    venv = _in_project_venv(poetry, io) if create_venv else None
    executable = venv[1] if venv else None

    original_version = package.version.to_string()
    package.version = version.value  # in memory only
    if urls:
        package.custom_urls = {**package.custom_urls, **urls}

    _remove_previous(dist_dir, name, version.value)
    pyproject = poetry.pyproject_path
    stamp_needed = bool(urls) or version.value != original_version
    with tempfile.TemporaryDirectory(prefix="gitlab-release-") as scratch:
        stamped: Path | None = None
        if stamp_needed:
            stamped = Path(scratch) / "pyproject.toml"
            stamped.write_text(
                stamp_pyproject(pyproject.read_text(encoding="utf-8"), version.value, urls),
                encoding="utf-8",
            )
            stamped.chmod(pyproject.stat().st_mode & 0o777)
        try:
            _build_sdist(poetry, dist_dir, executable, stamped)
            _build_wheel(poetry, dist_dir, executable)
        except BuildError:
            raise
        except Exception as exc:  # poetry-core reports problems as assorted exceptions
            raise BuildError(f"building {package.pretty_name} failed: {exc}") from exc

    artifacts = tuple(a for a in load_artifacts(dist_dir, name, version.value) if a.kind != "sbom")
    kinds = {artifact.kind for artifact in artifacts}
    if kinds != {"sdist", "wheel"}:
        raise BuildError(
            f"the build left no {'sdist' if 'sdist' not in kinds else 'wheel'} "
            f"of {name} {version.value} in {dist_dir}"
        )
    return BuildResult(
        name=name,
        version=version,
        artifacts=artifacts,
        venv=venv[0] if venv else None,
        stamped_urls=urls,
    )


def _require_in_process_build(poetry: Poetry) -> None:
    """Poetry's in-process builder handles poetry-core projects without a build script."""
    from importlib import metadata

    from poetry.core.constraints.version import Version

    requires = poetry.build_system_dependencies
    problem = None
    if poetry.package.build_script:
        problem = "it has a build script"
    elif len(requires) != 1 or requires[0].name != "poetry-core":
        names = ", ".join(dep.to_pep_508() for dep in requires) or "nothing"
        problem = f"[build-system] requires {names}, not poetry-core alone"
    elif not requires[0].constraint.allows(Version.parse(metadata.version("poetry-core"))):
        problem = (
            f"[build-system] requires {requires[0].to_pep_508()}, but Poetry's poetry-core is "
            f"{metadata.version('poetry-core')}"
        )
    if problem:
        raise BuildError(
            f"cannot build {poetry.package.pretty_name} with Poetry's own builder: {problem}",
            hint="use `poetry build` in an earlier job and run --steps sign,verify,publish",
        )


def _in_project_venv(poetry: Poetry, io: IO) -> tuple[Path, Path]:
    from poetry.utils.env import EnvManager

    poetry.config.merge({"virtualenvs": {"in-project": True}})
    try:
        env = EnvManager(poetry, io=io).create_venv()
    except Exception as exc:
        raise BuildError(f"cannot create the project's virtual environment: {exc}") from exc
    return Path(env.path), Path(env.python)


def _remove_previous(dist_dir: Path, name: str, version: str) -> None:
    """Artifacts of this version are rebuilt; their old signatures would no longer match."""
    for path in artifact_paths(dist_dir, name, version):
        for suffix in SIGNATURE_SUFFIXES:
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        path.unlink()


def _build_sdist(
    poetry: Poetry, dist_dir: Path, executable: Path | None, stamped: Path | None
) -> Path:
    from poetry.core.masonry.builders.builder import BuildIncludeFile
    from poetry.core.masonry.builders.sdist import SdistBuilder

    class StampedPyproject(BuildIncludeFile):
        """pyproject.toml in the sdist, read from the stamped copy."""

        def relative_to_project_root(self) -> Path:
            return Path("pyproject.toml")

        def relative_to_source_root(self) -> Path:
            return Path("pyproject.toml")

    class StampedSdistBuilder(SdistBuilder):
        def find_files_to_add(self, exclude_build: bool = False) -> set[BuildIncludeFile]:
            files = super().find_files_to_add(exclude_build)
            if stamped is None:
                return files
            original = (self._path / "pyproject.toml").resolve()
            kept = {item for item in files if item.path != original}
            kept.add(StampedPyproject(stamped, stamped.parent, stamped.parent))
            return kept

    return StampedSdistBuilder(poetry, executable=executable).build(dist_dir)


def _build_wheel(poetry: Poetry, dist_dir: Path, executable: Path | None) -> Path:
    from poetry.core.masonry.builders.wheel import WheelBuilder

    return WheelBuilder(poetry, executable=executable).build(dist_dir)
