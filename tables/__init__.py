"""Faust tables of per-opportunity ML fields and their timers (issue 5; not built yet)."""
