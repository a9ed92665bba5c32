"""GitLab's real GraphQL schemas from ../shared/testdata/gitlab (never copied into the repo).

Tests that use them skip when the directory is absent. Building a schema takes seconds, so each
is built once per test process.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from graphql import GraphQLSchema, build_schema

SCHEMAS = Path(__file__).resolve().parents[4] / "shared" / "testdata" / "gitlab"


def schema_path(version: str) -> Path:
    path = SCHEMAS / f"schema-{version}.graphql"
    if not path.is_file():
        pytest.skip(f"GitLab's {version} schema is not available ({path})")
    return path


@cache
def _built(path: Path) -> GraphQLSchema:
    return build_schema(path.read_text())


def real_schema(version: str) -> GraphQLSchema:
    return _built(schema_path(version))
