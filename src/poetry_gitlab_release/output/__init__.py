"""Rendering only: tables, colours, the watch screen, JSON, JUnit XML and OpenMetrics."""

from __future__ import annotations
