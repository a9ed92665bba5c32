"""Rendering only: tables, summaries, JSON, JUnit XML, OpenMetrics, progress; nothing here talks to a server."""

from __future__ import annotations
