"""CRM field mappings as data: provider record → shard type, field by field."""
