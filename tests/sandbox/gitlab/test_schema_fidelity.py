"""The stand-in's GraphQL schema and the product's query documents against GitLab's own schemas.

- Every type, field, argument (type and default) and enum value of the stand-in's schema exists,
  with the same type and nullability, in GitLab 18.8's schema: the stand-in cannot drift.
- Every query document `gitlab-pipelines` can send (each `--ref` mode, each page size it may
  shrink to) validates against 18.8 with graphql-core.
- Against 16.3 the same documents do not validate, which is why the product must fall back to
  REST there (tests/e2e/test_pipelines.py runs that through the real command).
"""

from __future__ import annotations

import pytest
from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLObjectType,
    GraphQLSchema,
    parse,
    print_ast,
    validate,
)

from poetry_gitlab_release.pipelines.fetch import GRAPHQL_PAGE_SIZE, projects_query
from poetry_gitlab_release.pipelines.filters import RefKind, RefSelector
from sandbox.gitlab.graphql_api import SCHEMA
from tests.sandbox.gitlab.real_schemas import real_schema

pytestmark = pytest.mark.xdist_group("gitlab-real-schemas")

REF_MODES = (
    RefSelector(RefKind.ANY),
    RefSelector(RefKind.DEFAULT),
    RefSelector(RefKind.NAMED, "main"),
)


def _default(argument: GraphQLArgument) -> str | None:
    node = argument.ast_node.default_value if argument.ast_node else None
    return print_ast(node) if node is not None else None


def schema_differences(ours: GraphQLSchema, real: GraphQLSchema) -> list[str]:
    found: list[str] = []
    for name, ours_type in sorted(ours.type_map.items()):
        if name.startswith("__"):
            continue
        real_type = real.type_map.get(name)
        if real_type is None:
            found.append(f"type {name} does not exist")
            continue
        if type(real_type) is not type(ours_type):
            found.append(f"type {name} is a {type(real_type).__name__} in GitLab")
            continue
        if isinstance(ours_type, GraphQLEnumType) and isinstance(real_type, GraphQLEnumType):
            found.extend(
                f"enum value {name}.{value} does not exist"
                for value in sorted(set(ours_type.values) - set(real_type.values))
            )
        if not isinstance(ours_type, GraphQLObjectType):
            continue
        assert isinstance(real_type, GraphQLObjectType)
        for field_name, field in ours_type.fields.items():
            real_field = real_type.fields.get(field_name)
            where = f"{name}.{field_name}"
            if real_field is None:
                found.append(f"field {where} does not exist")
                continue
            if str(real_field.type) != str(field.type):
                found.append(f"field {where} is {real_field.type} in GitLab, not {field.type}")
            for arg_name, arg in field.args.items():
                real_arg = real_field.args.get(arg_name)
                if real_arg is None:
                    found.append(f"argument {where}({arg_name}) does not exist")
                elif str(real_arg.type) != str(arg.type):
                    found.append(f"argument {where}({arg_name}) is {real_arg.type} in GitLab")
                elif _default(real_arg) != _default(arg):
                    found.append(f"argument {where}({arg_name}) defaults to {_default(real_arg)}")
    return found


def test_the_differ_sees_a_difference() -> None:
    from graphql import build_schema

    real = build_schema("type Query { a(x: Int = 1): String! b: Int }")
    ours = build_schema("type Query { a(x: Int = 2, y: Int): String c: Int }")
    assert schema_differences(ours, real) == [
        "field Query.a is String! in GitLab, not String",
        "argument Query.a(x) defaults to 1",
        "argument Query.a(y) does not exist",
        "field Query.c does not exist",
    ]


def test_standin_schema_is_gitlab_18_8s() -> None:
    assert schema_differences(SCHEMA, real_schema("18.8")) == []


def _documents() -> list[tuple[str, str]]:
    documents = []
    for ref in REF_MODES:
        for size in sorted({1, 10, 50, GRAPHQL_PAGE_SIZE}):
            documents.append((f"{ref.kind.value}/{size}", projects_query(size, ref).text()))
    return documents


def test_every_product_query_validates_against_gitlab_18_8() -> None:
    schema = real_schema("18.8")
    documents = _documents()
    assert {name.split("/")[0] for name, _ in documents} == {"any", "default", "named"}
    for name, text in documents:
        assert [e.message for e in validate(schema, parse(text))] == [], name


def test_the_product_queries_do_not_validate_against_gitlab_16_3() -> None:
    schema = real_schema("16.3")
    for name, text in _documents():
        messages = {e.message for e in validate(schema, parse(text))}
        assert "Unknown argument 'includeArchived' on field 'Group.projects'." in messages, name


def test_the_products_complexity_estimate_never_undercuts_gitlabs_rules() -> None:
    """The page size the product picks from its own estimate is one GitLab's rules (as the
    stand-in scores them, `ref` +2 included) accept, so no page is refused for complexity."""
    from graphql import OperationDefinitionNode

    from poetry_gitlab_release.pipelines.fetch import largest_page_size, query_complexity
    from sandbox.gitlab.graphql_complexity import complexity

    variables = {"fullPath": "g", "ref": "main", "includeArchived": False, "after": None}
    for ref in REF_MODES:
        for size in (1, 50, largest_page_size(ref)):
            query = projects_query(size, ref)
            operation = parse(query.text()).definitions[0]
            assert isinstance(operation, OperationDefinitionNode)
            gitlab_score = complexity(SCHEMA, operation, {}, variables)
            assert query_complexity(query) >= gitlab_score <= 250, (ref, size)
