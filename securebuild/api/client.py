"""Client of securebuild's HTTPS API (``securebuild logs``, ``start-build --from-*``).

urllib3 with an explicit CA file: ``REQUESTS_CA_BUNDLE`` and proxies in the environment never
apply. The caller's own bearer token (from their kubeconfig) is sent; the server checks it.
"""

from __future__ import annotations

import json
import ssl
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import urllib3

from securebuild.errors import SecurebuildError


class ApiClientError(SecurebuildError):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


class SecurebuildApi:
    def __init__(self, url: str, token: str, ca_file: Path | None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        self.pool = urllib3.PoolManager(ssl_context=context, retries=False)
        self.timeout = timeout

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @staticmethod
    def _error(response: Any, data: bytes | None = None) -> ApiClientError:
        if data is None:
            data = bytes(response.data or b"")
        try:
            message = json.loads(data).get("message") or data.decode(errors="replace")
        except (ValueError, AttributeError):
            message = data.decode(errors="replace")
        return ApiClientError(response.status, f"{response.status}: {message}")

    def log_lines(self, namespace: str, name: str, *, follow: bool) -> Iterator[str]:
        path = (
            f"/apis/build.openshift.io/v1/namespaces/{urllib.parse.quote(namespace)}/builds/"
            f"{urllib.parse.quote(name)}/log"
        )
        try:
            response = self.pool.request(
                "GET",
                self.url + path + ("?follow=true" if follow else ""),
                headers=self._headers(),
                preload_content=False,
                timeout=urllib3.Timeout(connect=10, read=None if follow else self.timeout),
            )
        except urllib3.exceptions.HTTPError as exc:
            raise ApiClientError(0, f"cannot reach {self.url}: {exc}") from exc
        if response.status != 200:
            raise self._error(response, response.read())
        buffer = b""
        for chunk in response.stream(8192):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                yield line.decode(errors="replace")
        if buffer:
            yield buffer.decode(errors="replace")

    def instantiate_binary(
        self, namespace: str, name: str, body: bytes, as_file: str | None = None
    ) -> dict[str, Any]:
        path = (
            f"/apis/build.openshift.io/v1/namespaces/{urllib.parse.quote(namespace)}/"
            f"buildconfigs/{urllib.parse.quote(name)}/instantiatebinary"
        )
        if as_file:
            path += "?" + urllib.parse.urlencode({"asFile": as_file})
        try:
            response = self.pool.request(
                "POST",
                self.url + path,
                body=body,
                headers={**self._headers(), "Content-Type": "application/octet-stream"},
                timeout=urllib3.Timeout(connect=10, read=300),
            )
        except urllib3.exceptions.HTTPError as exc:
            raise ApiClientError(0, f"cannot reach {self.url}: {exc}") from exc
        if response.status != 201:
            raise self._error(response)
        result: dict[str, Any] = json.loads(response.data)
        return result
