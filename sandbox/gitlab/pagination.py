"""GitLab's offset pagination: ``page``/``per_page`` and the ``Link``/``x-*`` headers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar
from urllib.parse import urlencode

from sandbox.gitlab.http import ApiError, Request

T = TypeVar("T")
MAX_PER_PAGE = 100
COUNT_LIMIT = 10_000  # above this, x-total, x-total-pages and rel="last" are omitted


def _int_param(request: Request, name: str, default: int) -> int:
    value = request.param(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ApiError.grape(f"{name} is invalid") from None


def paginate(request: Request, items: Sequence[T]) -> tuple[list[T], list[tuple[str, str]]]:
    page = max(1, _int_param(request, "page", 1))
    per_page = _int_param(request, "per_page", 20)
    if per_page < 1:
        per_page = 20
    per_page = min(per_page, MAX_PER_PAGE)
    total = len(items)
    start = (page - 1) * per_page
    chunk = list(items[start : start + per_page])
    total_pages = max(1, -(-total // per_page))
    has_next = start + per_page < total
    counted = total <= COUNT_LIMIT

    def url(target: int) -> str:
        query = [(k, v) for k, values in request.query.items() for v in values]
        query = [(k, v) for k, v in query if k not in ("page", "per_page")]
        query += [("page", str(target)), ("per_page", str(per_page))]
        return f"{request.base_url}{request.path}?{urlencode(query)}"

    links = []
    if page > 1:
        links.append(f'<{url(page - 1)}>; rel="prev"')
    if has_next:
        links.append(f'<{url(page + 1)}>; rel="next"')
    links.append(f'<{url(1)}>; rel="first"')
    if counted:
        links.append(f'<{url(total_pages)}>; rel="last"')
    headers = [
        ("Link", ", ".join(links)),
        ("x-page", str(page)),
        ("x-per-page", str(per_page)),
        ("x-next-page", str(page + 1) if has_next else ""),
        ("x-prev-page", str(page - 1) if page > 1 else ""),
    ]
    if counted:
        headers += [("x-total", str(total)), ("x-total-pages", str(total_pages))]
    return chunk, headers
