"""The group pipeline dashboard: the command, fetching a snapshot of latest pipelines, its
plain data and filters, and the renderers (table, watch, JSON, OpenMetrics).
"""

from __future__ import annotations
