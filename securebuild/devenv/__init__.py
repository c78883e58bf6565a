"""Local services for development and tests (API server, registry, ...), started on 127.0.0.1.

Each module is one service: a small class with ``start()``/``stop()`` and a context manager,
ports chosen free at run time, state in a temporary (or given) directory, logs kept there and
quoted in the error when a start fails. Test fixtures and ``securebuild dev`` are thin wrappers.
"""
