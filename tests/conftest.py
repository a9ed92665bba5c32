from __future__ import annotations

# Fixtures live in one module per concern so that each can grow without touching the others.
pytest_plugins = [
    "tests.fixtures.poetry",
    "tests.fixtures.gitlab",
    "tests.fixtures.sigstore",
    "tests.fixtures.pypi",
    "tests.fixtures.figures",
]
