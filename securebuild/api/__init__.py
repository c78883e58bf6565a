"""HTTPS endpoints: build logs, binary uploads, health and metrics.

Authentication by TokenReview, authorization by SubjectAccessReview against the cluster
(:mod:`.auth`); the server itself is :mod:`.server`.
"""

from securebuild.api.auth import Action, Authenticator, Authorizer, User
from securebuild.api.server import ApiServer

__all__ = ["Action", "ApiServer", "Authenticator", "Authorizer", "User"]
