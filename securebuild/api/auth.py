"""Who is calling, and may they? TokenReview and SubjectAccessReview against the cluster.

The HTTPS API holds no user database and no policy of its own: the caller's bearer token is
checked by the API server (TokenReview) and every action by the API server's authorizer
(SubjectAccessReview), with exactly the verbs and subresources OpenShift uses (``get
builds/log``, ``create buildconfigs/instantiatebinary``), so RBAC decides, as for ``oc``.
Positive token reviews are cached briefly (10 s) to spare the API server on log streams.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: POST a JSON body to an API path of the cluster and return the decoded answer (the daemon
#: passes its cluster client's; this layer does not import the cluster package).
Post = Callable[[str, dict[str, Any]], dict[str, Any]]

logger = logging.getLogger(__name__)

TOKEN_CACHE_SECONDS = 10.0


@dataclass(frozen=True)
class User:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, list[str]] = field(default_factory=dict)


class Authenticator:
    def __init__(self, post: Post) -> None:
        self.post = post
        self._cache: dict[str, tuple[float, User]] = {}
        self._lock = threading.Lock()

    def user(self, token: str) -> User | None:
        if not token:
            return None
        digest = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(digest)
            if cached and cached[0] > now:
                return cached[1]
        review = self.post(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenReview",
                "spec": {"token": token},
            },
        )
        status = review.get("status") or {}
        if not status.get("authenticated"):
            return None
        info = status.get("user") or {}
        user = User(
            name=str(info.get("username") or ""),
            uid=str(info.get("uid") or ""),
            groups=tuple(info.get("groups") or ()),
            extra={k: list(v) for k, v in (info.get("extra") or {}).items()},
        )
        with self._lock:
            if len(self._cache) > 10000:
                self._cache.clear()
            self._cache[digest] = (now + TOKEN_CACHE_SECONDS, user)
        return user


@dataclass(frozen=True)
class Action:
    verb: str
    resource: str
    subresource: str
    namespace: str
    name: str
    group: str = "build.openshift.io"

    def forbidden_message(self, user: User) -> str:
        """Kubernetes' wording of a 403."""
        full = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        return (
            f'{self.resource}.{self.group} "{self.name}" is forbidden: User "{user.name}" '
            f'cannot {self.verb} resource "{full}" in API group "{self.group}" in the '
            f'namespace "{self.namespace}"'
        )


class Authorizer:
    def __init__(self, post: Post) -> None:
        self.post = post

    def allowed(self, user: User, action: Action) -> bool:
        spec: dict[str, Any] = {
            "user": user.name,
            "groups": list(user.groups),
            "resourceAttributes": {
                "namespace": action.namespace,
                "verb": action.verb,
                "group": action.group,
                "resource": action.resource,
                "subresource": action.subresource,
                "name": action.name,
            },
        }
        if user.uid:
            spec["uid"] = user.uid
        if user.extra:
            spec["extra"] = user.extra
        review = self.post(
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": spec,
            },
        )
        return bool((review.get("status") or {}).get("allowed"))
