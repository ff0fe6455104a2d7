"""Provider payloads (generic and native) to shard drafts: plain code, no Faust, no I/O."""
