"""Reading the Secrets and ConfigMaps a Build refers to (source, push, pull secrets, inputs).

Values are returned decoded and are never logged; a missing object is None so the caller can
report it with OpenShift's message (``These resources do not exist: ... Secrets [...]``).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from securebuild.cluster import paths
from securebuild.cluster.client import ApiError, Kube


@dataclass(frozen=True)
class SecretData:
    name: str
    type: str
    data: dict[str, bytes] = field(repr=False)


class SecretLookup:
    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    def get(self, namespace: str, name: str) -> SecretData | None:
        try:
            obj = self.kube.get(paths.secret(namespace, name))
        except ApiError as exc:
            if exc.not_found:
                return None
            raise
        data: dict[str, bytes] = {}
        for key, value in (obj.get("data") or {}).items():
            try:
                data[key] = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                continue
        for key, value in (obj.get("stringData") or {}).items():
            data.setdefault(key, str(value).encode())
        return SecretData(name=name, type=str(obj.get("type") or "Opaque"), data=data)

    def config_map(self, namespace: str, name: str) -> SecretData | None:
        """A ConfigMap as key -> bytes (``data`` as UTF-8, ``binaryData`` decoded)."""
        try:
            obj = self.kube.get(paths.configmap(namespace, name))
        except ApiError as exc:
            if exc.not_found:
                return None
            raise
        data: dict[str, bytes] = {
            key: str(value).encode() for key, value in (obj.get("data") or {}).items()
        }
        for key, value in (obj.get("binaryData") or {}).items():
            try:
                data.setdefault(key, base64.b64decode(value, validate=True))
            except (binascii.Error, ValueError):
                continue
        return SecretData(name=name, type="ConfigMap", data=data)
