"""Query complexity and depth after GitLab's rules.

Complexity (app/graphql/types/base_field.rb ``field_resolver_complexity`` and
app/graphql/resolvers/base_resolver.rb): a plain field costs 1 (``base_complexity``; 2 when it
``calls_gitaly``) plus its children. A field backed by a resolver costs its children plus the
resolver's ``resolver_complexity`` (1, +1 with ``sort``, +5 with ``search``; +10 more for
``NamespaceProjectsResolver`` = ``Group.projects``; +2 each for ``ref`` and ``sha`` on pipeline
connections, app/graphql/resolvers/concerns/resolves_pipelines.rb), +1 when it calls Gitaly; a
resolver *connection* then grows by ``complexity * min(first, last, 100) * complexity_multiplier``
with the multiplier 0.01 (0 when ``iid``/``iids`` is given). The result is truncated (``to_i``).
Limits (app/graphql/gitlab_schema.rb): complexity 200 anonymous / 250 authenticated, depth 15 /
20, page size 100. graphql-ruby 2.x's own page-size weighting of plain connection fields is not
modelled [unconfirmed against a live GitLab].
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    value_from_ast_untyped,
)

MAX_PAGE_SIZE = 100
RESOLVER_FIELDS: dict[tuple[str, str], int] = {
    ("Query", "group"): 1,
    ("Query", "groups"): 1,
    ("Query", "project"): 1,
    ("Group", "projects"): 11,  # BaseResolver 1 + NamespaceProjectsResolver 10
    ("Group", "descendantGroups"): 1,
    ("Project", "pipeline"): 1,
    ("Project", "pipelines"): 1,
    ("Pipeline", "jobs"): 1,
}
# ResolvesPipelines.resolver_complexity: +2 for each of these arguments.
PIPELINE_FILTERS = {("Project", "pipelines"): ("ref", "sha")}
CONNECTIONS = {
    ("Query", "groups"),
    ("Group", "projects"),
    ("Group", "descendantGroups"),
    ("Project", "pipelines"),
    ("Pipeline", "jobs"),
}
GITALY_FIELDS = {("Repository", "rootRef")}


def complexity(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any],
) -> int:
    root = schema.query_type
    assert root is not None
    return _selection(schema, root, operation.selection_set, fragments, variables, set())


def _selection(
    schema: GraphQLSchema,
    parent: GraphQLObjectType,
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any],
    visiting: set[str],
) -> int:
    if selection_set is None:
        return 0
    total = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            total += _field(schema, parent, selection, fragments, variables, visiting)
        elif isinstance(selection, InlineFragmentNode):
            total += _selection(
                schema, parent, selection.selection_set, fragments, variables, visiting
            )
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in visiting:
                total += _selection(
                    schema, parent, fragment.selection_set, fragments, variables, visiting | {name}
                )
    return total


def _field(
    schema: GraphQLSchema,
    parent: GraphQLObjectType,
    node: FieldNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any],
    visiting: set[str],
) -> int:
    name = node.name.value
    if name.startswith("__"):
        return 0
    definition = parent.fields.get(name)
    if definition is None:
        return 1
    child_type = get_named_type(definition.type)
    children = 0
    if isinstance(child_type, GraphQLObjectType):
        children = _selection(
            schema, child_type, node.selection_set, fragments, variables, visiting
        )
    key = (parent.name, name)
    if key not in RESOLVER_FIELDS:
        return 1 + children + (1 if key in GITALY_FIELDS else 0)
    args = {
        arg.name.value: value_from_ast_untyped(arg.value, variables) for arg in node.arguments or ()
    }
    cost = float(children + RESOLVER_FIELDS[key])
    if args.get("sort"):
        cost += 1
    if args.get("search"):
        cost += 5
    for name in PIPELINE_FILTERS.get(key, ()):
        if args.get(name):
            cost += 2
    if key in GITALY_FIELDS:
        cost += 1
    if key in CONNECTIONS:
        limits = [v for v in (args.get("first"), args.get("last")) if isinstance(v, int)]
        multiplier = 0.0 if args.get("iid") or args.get("iids") else 0.01
        cost += cost * min([*limits, MAX_PAGE_SIZE]) * multiplier
    return int(cost)


def depth(operation: OperationDefinitionNode, fragments: dict[str, FragmentDefinitionNode]) -> int:
    """graphql-ruby's QueryDepth: the deepest chain of nested fields (fragments inlined)."""

    def of(selection_set: SelectionSetNode | None, visiting: frozenset[str]) -> int:
        if selection_set is None:
            return 0
        deepest = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                deepest = max(deepest, 1 + of(selection.selection_set, visiting))
            elif isinstance(selection, InlineFragmentNode):
                deepest = max(deepest, of(selection.selection_set, visiting))
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if fragment is not None and name not in visiting:
                    deepest = max(deepest, of(fragment.selection_set, visiting | {name}))
        return deepest

    return of(operation.selection_set, frozenset())
