"""Stand-ins only the tests use (they need dev-only packages such as websockets)."""
