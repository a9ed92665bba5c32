"""The consumer side: resolve a release, download it, verify every file, report."""

from __future__ import annotations
