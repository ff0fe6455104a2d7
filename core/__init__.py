"""The kernel beneath every other package: errors, settings, tenants, addresses, metrics,
retries. It imports no other first-party package."""
