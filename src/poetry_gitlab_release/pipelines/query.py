"""The GraphQL query for a group's projects and their latest pipelines, and its cost.

GitLab limits a query's complexity (250 authenticated); `largest_page_size` picks the largest
page of projects that stays below it for the selected ref.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from poetry_gitlab_release.errors import ApiError
from poetry_gitlab_release.gitlab.failures import GraphQLProblem, GraphQLResponseError
from poetry_gitlab_release.pipelines.filters import RefKind, RefSelector

GRAPHQL_PAGE_SIZE = 100  # GitLab's max_page_size for every connection
GRAPHQL_MAX_COMPLEXITY = 250  # authenticated; 200 without a token
FAILED_JOBS_PAGE = 50

# --- GraphQL query and its complexity -------------------------------------------------------


@dataclass(frozen=True)
class GqlField:
    """One selected field. Renders itself and computes GitLab's complexity score.

    GitLab (`Types::BaseField`): a plain field costs 1 plus its selections; a field with a
    resolver costs its selections + 1 (+ the resolver's extras, e.g. 10 for
    `includeSubgroups`), and when it is a connection that sum grows by 1 % per requested node
    (`complexity_multiplier` 0.01 x `first`, page size 100 when `first` is absent).
    """

    name: str
    selections: tuple[GqlField, ...] = ()
    args: str = ""
    resolver: bool = False
    connection_size: int | None = None  # `first`, for connections with a resolver
    extra: int = 0

    def text(self) -> str:
        head = f"{self.name}({self.args})" if self.args else self.name
        if not self.selections:
            return head
        return head + " { " + " ".join(child.text() for child in self.selections) + " }"

    def complexity(self) -> float:
        children = sum(child.complexity() for child in self.selections)
        if not self.resolver:
            return 1 + children
        score = children + 1 + self.extra
        if self.connection_size is not None:
            score += score * self.connection_size * 0.01
        return score


def _leaves(*names: str) -> tuple[GqlField, ...]:
    return tuple(GqlField(name) for name in names)


def _pipeline_selections() -> tuple[GqlField, ...]:
    return (
        *_leaves("id", "iid", "status", "ref", "sha", "source"),
        *_leaves("createdAt", "updatedAt", "duration", "path"),
        GqlField(
            "stages",
            (GqlField("nodes", _leaves("name", "status")),),
            resolver=True,
            connection_size=GRAPHQL_PAGE_SIZE,
        ),
        GqlField(
            "jobs",
            (
                GqlField(
                    "nodes",
                    (
                        *_leaves("id", "name", "allowFailure"),
                        GqlField("stage", _leaves("name")),
                    ),
                ),
            ),
            args=f"statuses: [FAILED], retried: false, first: {FAILED_JOBS_PAGE}",
            resolver=True,
            connection_size=FAILED_JOBS_PAGE,
        ),
    )


def projects_query(page_size: int, ref: RefSelector) -> GqlField:
    """The whole query as a field tree (root `query`), for one page of `page_size` projects."""
    if ref.kind is RefKind.DEFAULT:
        # Like REST /pipelines/latest: the latest pipeline of the default branch's head commit.
        pipeline = GqlField("pipeline", _pipeline_selections(), resolver=True)
    else:
        ref_arg = ", ref: $ref" if ref.kind is RefKind.NAMED else ""
        pipeline = GqlField(
            "pipelines",
            (GqlField("nodes", _pipeline_selections()),),
            args=f"first: 1{ref_arg}",
            resolver=True,
            connection_size=1,
            extra=2 if ref_arg else 0,  # ResolvesPipelines.resolver_complexity: +2 for `ref`
        )
    projects = GqlField(
        "projects",
        (
            GqlField("pageInfo", _leaves("hasNextPage", "endCursor")),
            GqlField("nodes", (*_leaves("id", "fullPath", "name", "archived", "webUrl"), pipeline)),
        ),
        args=(
            "includeSubgroups: true, includeArchived: $includeArchived, "
            f"first: {page_size}, after: $after"
        ),
        resolver=True,
        connection_size=page_size,
        extra=10,
    )
    group = GqlField(
        "group",
        (*_leaves("id", "fullPath"), projects),
        args="fullPath: $fullPath",
        resolver=True,
    )
    variables = "$fullPath: ID!, $after: String, $includeArchived: Boolean!"
    if ref.kind is RefKind.NAMED:
        variables += ", $ref: String!"
    return GqlField(f"query GroupLatestPipelines({variables})", (group,))


def query_complexity(query: GqlField) -> float:
    """The score GitLab computes for `query` (the root operation itself costs nothing)."""
    return sum(child.complexity() for child in query.selections)


def largest_page_size(ref: RefSelector, limit: int = GRAPHQL_MAX_COMPLEXITY) -> int:
    for size in range(GRAPHQL_PAGE_SIZE, 0, -1):
        if query_complexity(projects_query(size, ref)) <= limit:
            return size
    raise AssertionError("even one project per page exceeds the complexity limit")


COMPLEXITY_ERROR = re.compile(
    r"complexity of (\d+(?:\.\d+)?),? which exceeds max complexity of (\d+)"
)


# --- when GitLab refuses the query ---------------------------------------------------------


# graphql-ruby's static validation (GitLab's engine) tags each error with one of these codes
# (lib/graphql/static_validation/rules/*.rb); its messages read as in the markers below, e.g.
# "Field 'projects' doesn't accept argument 'includeArchived'", "Field 'source' doesn't exist
# on type 'Pipeline'". Any of them means this GitLab's schema is not the one the query is for.
SCHEMA_VALIDATION_CODES = frozenset(
    {
        "undefinedField",
        "argumentNotAccepted",
        "missingRequiredArguments",
        "argumentLiteralsIncompatible",
        "variableNotUsed",
        "variableNotDefined",
        "variableMismatch",
        "variableRequiresValidType",
        "undefinedType",
        "selectionMismatch",
        "undefinedDirective",
        "directiveCannotBeApplied",
    }
)
SCHEMA_VALIDATION_MARKERS = (
    "doesn't exist on type",
    "doesn't accept argument",
    "is missing required arguments",
    "but not used",
    "but not declared",
    "isn't a defined input type",
    "so it can't be a fragment condition",
    "has an invalid value",
    "nullability mismatch on variable",
    "type mismatch on variable",
    "cannot query field",  # other engines' words, e.g. graphql-js
    "unknown argument",
)
# Project.pipeline without arguments is refused before GitLab ~17.x (ProjectPipelineResolver
# required one of iid/sha): --ref default then needs REST's /pipelines/latest.
OLD_RESOLVER_MARKERS = ("provide one of an iid or sha",)


def _problems(error: ApiError) -> list[GraphQLProblem]:
    if isinstance(error, GraphQLResponseError):
        return list(error.problems)
    return [GraphQLProblem(error.message)]


def complexity_refusal(error: ApiError) -> re.Match[str] | None:
    for problem in _problems(error):
        match = COMPLEXITY_ERROR.search(problem.message)
        if match:
            return match
    return None


def graphql_unavailable_reason(error: ApiError) -> str | None:
    """Why REST must serve instead, or None when the error is a real failure.

    Every error of the answer is inspected: GraphQL disabled or absent (404, 405, 501, 5xx),
    a schema-validation error of any kind (this GitLab's schema lacks a field or argument the
    query uses), or a resolver older GitLab has (`pipeline` without arguments).
    """
    if not isinstance(error, GraphQLResponseError):
        if error.status in {404, 405, 501} or error.status >= 500:
            return f"the GraphQL endpoint answered {error.status}"
        return None
    for problem in error.problems:
        text = problem.message.lower()
        if problem.code in SCHEMA_VALIDATION_CODES or any(
            marker in text for marker in SCHEMA_VALIDATION_MARKERS
        ):
            return "this GitLab's GraphQL schema lacks what the query needs: " + _shorten(
                problem.message
            )
        if any(marker in text for marker in OLD_RESOLVER_MARKERS):
            return "this GitLab cannot give the default branch's latest pipeline over GraphQL: " + (
                _shorten(problem.message)
            )
    return None


def _shorten(text: str) -> str:
    return text if len(text) <= 120 else text[:117] + "..."
