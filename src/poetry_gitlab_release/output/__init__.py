"""Rendering only: text summaries, JSON, progress. Nothing here talks to a server."""
