"""The RabbitMQ-to-stream bridge: its own process, at-least-once, never reorders a key."""
