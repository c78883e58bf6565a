"""Launchers of local services for tests and ``securebuild dev up``."""
