"""The `modelforge` command: a terminal client of the modelforge HTTP API (not deployed)."""
