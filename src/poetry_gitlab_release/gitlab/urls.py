"""GitLab API URLs. `:id` is a numeric id or the URL-encoded full path."""

from __future__ import annotations

from urllib.parse import quote


def encode_id(project_or_group: str | int) -> str:
    """`group/sub/project` -> `group%2Fsub%2Fproject`; GitLab matches no route on a raw '/'."""
    return quote(str(project_or_group).strip("/"), safe="")


def pypi_upload_url(api_url: str, project: str | int) -> str:
    return f"{api_url}/projects/{encode_id(project)}/packages/pypi"


def pypi_simple_url(
    api_url: str, *, project: str | int | None = None, group: str | int | None = None
) -> str:
    if project is not None:
        return f"{api_url}/projects/{encode_id(project)}/packages/pypi/simple"
    if group is not None:
        return f"{api_url}/groups/{encode_id(group)}/-/packages/pypi/simple"
    raise ValueError("a project or a group is needed")


def generic_file_url(
    api_url: str, project: str | int, package: str, version: str, file_name: str
) -> str:
    return (
        f"{api_url}/projects/{encode_id(project)}/packages/generic/"
        f"{quote(package, safe='')}/{quote(version, safe='')}/{quote(file_name, safe='')}"
    )
