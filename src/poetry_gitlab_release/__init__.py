"""poetry-gitlab-release: secure Python releases on GitLab, as a Poetry plugin."""

from __future__ import annotations

__version__ = "0.1.0"
