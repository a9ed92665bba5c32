"""Rendering only: tables, JSON, JUnit XML."""

from __future__ import annotations
