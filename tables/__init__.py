"""ML fields: per-opportunity activity features in a Faust table, their write-back and timers."""
