"""Faust web views: health, readiness, metrics, the read and review APIs, their OpenAPI
description."""
