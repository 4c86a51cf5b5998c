"""HTTP handlers, one module per datatype family; each registers itself with ``@handles``."""
