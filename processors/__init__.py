"""The integration-processors service: Faust app, settings, start-up and commands."""
