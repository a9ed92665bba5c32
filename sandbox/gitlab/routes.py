"""The one place where routes are wired: every route module, registered on a new ``App``.

A route module defines ``register(app: App) -> None``, which calls ``app.router.add(...)`` for
each of its routes, and is listed in ``ROUTE_MODULES`` below. Route modules import ``App`` from
sandbox.gitlab.app (never from here or from the server), so the import graph has no cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from sandbox.gitlab import (
    generic,
    graphql_api,
    groups,
    packages_api,
    pipelines,
    pypi,
    releases,
)
from sandbox.gitlab.app import App

ROUTE_MODULES: tuple[ModuleType, ...] = (
    pypi,
    generic,
    packages_api,
    groups,
    pipelines,
    graphql_api,
    releases,  # Releases and release links API (#16)
)


def wire(app: App) -> App:
    """Register every route module's routes on ``app`` (once) and return it."""
    for module in ROUTE_MODULES:
        register: Callable[[App], None] = module.register
        register(app)
    return app
