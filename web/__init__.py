"""Faust web views: health, readiness, metrics and the read and review APIs."""
