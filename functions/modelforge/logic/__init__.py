"""Use cases. Each takes typed models and the data-access objects it needs, and never sees a Lambda event."""
