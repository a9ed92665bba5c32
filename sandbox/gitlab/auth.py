"""Tokens, credential transports and permissions, after GitLab's ``auth_finders.rb``.

Every route names an auth policy saying which transports it honours. A credential a route does
not honour is ignored (the request is anonymous); a credential it honours but cannot find is 401.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
from dataclasses import dataclass

from sandbox.gitlab.http import ApiError, Request
from sandbox.gitlab.models import Group, Project
from sandbox.gitlab.principal import MEMBER, OUTSIDER, Principal, TokenRecord

__all__ = ["MEMBER", "OUTSIDER", "Principal", "TokenRecord", "TokenRegistry", "Tokens"]

JOB_USER = "gitlab-ci-token"
EXPIRED_BODY = {
    "error": "invalid_token",
    "error_description": "Token is expired. You can either do re-authorization or token refresh.",
}


@dataclass(frozen=True)
class Policy:
    pat_basic: bool  # PAT as HTTP Basic password
    deploy: bool  # DEPLOY-TOKEN header or Basic
    job: str  # "" (not accepted), "basic" (Basic gitlab-ci-token only), "request", "any"


POLICIES: dict[str, Policy] = {
    "pypi": Policy(pat_basic=True, deploy=True, job="basic"),
    "generic": Policy(pat_basic=True, deploy=True, job="any"),
    # lib/api/project_packages.rb and group_packages.rb declare no `deploy_token_allowed` (nor
    # basic_auth_personal_access_token): a DEPLOY-TOKEN header there is ignored, the request is
    # anonymous, and a private project answers 404 "Project Not Found". Deploy tokens are only
    # honoured by the registry routes (PyPI, generic: `deploy_token_allowed: true`).
    "packages_api": Policy(pat_basic=False, deploy=False, job="request"),
    "jobs": Policy(pat_basic=False, deploy=False, job="request"),
    "api": Policy(pat_basic=False, deploy=False, job=""),
    "graphql": Policy(pat_basic=False, deploy=False, job=""),
}


@dataclass(frozen=True)
class Tokens:
    """The tokens a stand-in knows. The personal tokens belong to a member of every group."""

    personal: str  # scope api
    read_api: str  # scope read_api
    no_scope: str  # scope read_user only
    deploy_username: str
    deploy_token: str  # read_package_registry + write_package_registry, every project
    expired: str  # scope api, expired
    outsider: str  # scope api, a user who is a member of nothing

    @classmethod
    def create(cls) -> Tokens:
        def pat() -> str:
            return "glpat-" + secrets.token_urlsafe(15)

        return cls(
            personal=pat(),
            read_api=pat(),
            no_scope=pat(),
            deploy_username="gitlab+deploy-token-1",
            deploy_token="gldt-" + secrets.token_urlsafe(15),
            expired=pat(),
            outsider=pat(),
        )


class TokenRegistry:
    def __init__(self, tokens: Tokens) -> None:
        self.tokens = tokens
        self._lock = threading.Lock()
        self._records: dict[str, TokenRecord] = {
            tokens.personal: TokenRecord("personal", frozenset({"api"}), MEMBER),
            tokens.read_api: TokenRecord("personal", frozenset({"read_api"}), MEMBER),
            tokens.no_scope: TokenRecord("personal", frozenset({"read_user"}), MEMBER),
            tokens.expired: TokenRecord("personal", frozenset({"api"}), MEMBER, expired=True),
            tokens.outsider: TokenRecord("personal", frozenset({"api"}), OUTSIDER),
            tokens.deploy_token: TokenRecord(
                "deploy",
                frozenset({"read_package_registry", "write_package_registry"}),
                None,
                username=tokens.deploy_username,
            ),
        }
        self._jobs: dict[int, str] = {}

    def job_token(self, project_id: int) -> str:
        with self._lock:
            if project_id not in self._jobs:
                token = "glcbt-" + secrets.token_urlsafe(20)
                self._jobs[project_id] = token
                self._records[token] = TokenRecord(
                    "job", frozenset({"api"}), MEMBER, project_id=project_id
                )
            return self._jobs[project_id]

    def lookup(self, token: str) -> TokenRecord | None:
        return self._records.get(token)

    # resolution ------------------------------------------------------------------------------
    def resolve(self, request: Request, policy_name: str) -> Principal:
        policy = POLICIES[policy_name]
        presented = presented_credentials(request)

        def personal(token: str) -> Principal:
            record = self.lookup(token)
            if record is None or record.kind != "personal":
                raise ApiError.unauthorized()
            if record.expired:
                raise ApiError(401, EXPIRED_BODY)
            return Principal("personal", record, presented)

        def job(token: str) -> Principal:
            record = self.lookup(token)
            if record is None or record.kind != "job":
                raise ApiError.unauthorized()
            return Principal("job", record, presented)

        private = request.header("private-token") or request.param("private_token")
        if private:
            return personal(private)
        authorization = request.header("authorization") or ""
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value:
            record = self.lookup(value.strip())
            if record is not None and record.kind == "job" and policy.job in ("request", "any"):
                return job(value.strip())
            return personal(value.strip())
        job_header = request.header("job-token") or request.param("job_token")
        if job_header and policy.job in ("request", "any"):
            return job(job_header)
        deploy_header = request.header("deploy-token")
        if deploy_header and policy.deploy:
            record = self.lookup(deploy_header)
            if record is None or record.kind != "deploy":
                raise ApiError.unauthorized()
            return Principal("deploy", record, presented)
        if scheme.lower() == "basic" and (policy.pat_basic or policy.deploy or policy.job):
            username, password = _basic(value)
            if username == JOB_USER and policy.job in ("basic", "any"):
                return job(password)
            record = self.lookup(password)
            if record is not None and record.kind == "personal" and policy.pat_basic:
                if record.expired:
                    raise ApiError(401, EXPIRED_BODY)
                return Principal("personal", record, presented)
            if record is not None and record.kind == "deploy" and policy.deploy:
                return Principal("deploy", record, presented)
        return Principal("anonymous", None, presented)


def _basic(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    username, _, password = decoded.partition(":")
    return username, password


def presented_credentials(request: Request) -> tuple[str, ...]:
    """Which credential transports a request carried (names only, never values)."""
    found = []
    if request.header("private-token"):
        found.append("private-token")
    if request.header("job-token"):
        found.append("job-token")
    if request.header("deploy-token"):
        found.append("deploy-token")
    scheme = (request.header("authorization") or "").partition(" ")[0].lower()
    if scheme:
        found.append(scheme)
    for name in ("private_token", "job_token"):
        if request.param(name):
            found.append(name + "-param")
    if request.header("cookie"):
        found.append("cookie")
    return tuple(found)


# permissions ---------------------------------------------------------------------------------
def can_see_group(principal: Principal, group: Group) -> bool:
    if principal.user == MEMBER and principal.kind == "personal":
        return True
    if principal.user == OUTSIDER:
        return group.visibility in ("public", "internal")
    return group.visibility == "public"


def can_see_project(principal: Principal, project: Project) -> bool:
    if principal.kind == "job":
        return project.id == principal.job_project_id
    if principal.kind == "deploy":
        return True
    if principal.user == MEMBER:
        return True
    if principal.user == OUTSIDER:
        return project.visibility in ("public", "internal")
    return project.visibility == "public"


def can_write_packages(principal: Principal, project: Project) -> bool:
    if principal.kind == "job":
        return project.id == principal.job_project_id
    if principal.kind == "deploy":
        return principal.record is not None and "write_package_registry" in principal.record.scopes
    return principal.user == MEMBER


def require_scope(principal: Principal, *, write: bool) -> None:
    """The API guard: a PAT needs ``api``, or ``read_api`` for reads."""
    if principal.kind != "personal" or principal.record is None:
        return
    scopes = principal.record.scopes
    if "api" in scopes or (not write and "read_api" in scopes):
        return
    raise ApiError(
        403,
        {
            "error": "insufficient_scope",
            "error_description": "The request requires higher privileges than provided by "
            "the access token.",
            "scope": "api" if write else "api read_api",
        },
    )
