"""Shards: the typed records the processors produce, their types and their stores."""
