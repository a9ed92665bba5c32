"""Who is calling: a resolved token and its kind. A leaf module (imports nothing of the stand-in),
so the request type, the auth rules and every route module can name it without import cycles."""

from __future__ import annotations

from dataclasses import dataclass

MEMBER = "member"
OUTSIDER = "outsider"


@dataclass(frozen=True)
class TokenRecord:
    kind: str  # personal | deploy | job
    scopes: frozenset[str]
    user: str | None
    expired: bool = False
    project_id: int | None = None
    username: str | None = None


@dataclass(frozen=True)
class Principal:
    kind: str  # anonymous | personal | deploy | job
    record: TokenRecord | None
    credentials: tuple[str, ...]

    @property
    def user(self) -> str | None:
        return self.record.user if self.record else None

    @property
    def job_project_id(self) -> int | None:
        return self.record.project_id if self.record and self.kind == "job" else None


ANONYMOUS = Principal("anonymous", None, ())
