"""Rendering only: tables, colours, the watch screen, JSON and OpenMetrics."""

from __future__ import annotations
