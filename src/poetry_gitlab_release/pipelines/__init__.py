"""The group pipeline dashboard's plain data: a snapshot of latest pipelines, and its filters.

Nothing here talks to GitLab or to a terminal: `gitlab/pipelines.py` fills a `Snapshot`,
`output/` renders it.
"""

from __future__ import annotations
