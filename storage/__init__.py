"""Storage: the schema, the engine and every SQL query frictionlog runs."""
