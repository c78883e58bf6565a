"""Local services for development and tests, each started on 127.0.0.1 only.

One module per service (API server, registry, dockerd with mTLS, libvirtd, base images): a small
class with ``start()``/``stop()`` and a context manager, ports chosen free at run time, state in a
temporary (or given) directory, logs kept there and quoted in the error when a start fails. Test
fixtures and ``securebuild dev`` are thin wrappers around them.
"""
