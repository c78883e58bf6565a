"""Local services for tests and ``securebuild dev up``: registry, dockerd with mTLS, libvirtd.

Each launcher is a small class with ``start()``/``stop()`` and context-manager support, binds to
127.0.0.1 only on a port chosen free at run time, keeps its files and logs in its own temp dir,
and shows the end of its log when it fails to start.
"""
