"""``securebuild start-build``, ``logs`` and ``cancel-build``: ``oc`` for securebuild builds.

They act as the user of the kubeconfig (``--kubeconfig``, ``$KUBECONFIG`` or
``~/.kube/config``). Starting a build uses OpenShift's ``instantiate`` subresource where it
exists and otherwise (the CRD test cluster, plain Kubernetes) creates the Build as OpenShift's
generator would. Logs and uploads go to securebuild's HTTPS API (``--api URL``, ``--api-ca
FILE``, or ``$SECUREBUILD_API`` and ``$SECUREBUILD_API_CA``) with the user's own token.
Messages are ``oc``'s (reference sections 6.1, 8 and 10).
"""

from __future__ import annotations

import io
import os
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import yaml

from securebuild.api.client import SecurebuildApi
from securebuild.cluster import ApiError, ClusterAccess, Kube, paths
from securebuild.cluster.instantiate import instantiate
from securebuild.errors import SecurebuildError
from securebuild.model.generate import BuildRequest
from securebuild.model.types import EnvVar

TERMINAL = ("Complete", "Failed", "Error", "Cancelled")
LABEL_BC = "openshift.io/build-config.name"


def _common(parser: Any) -> None:
    parser.add_argument("-n", "--namespace", default=None, help="project (namespace)")
    parser.add_argument("--kubeconfig", type=Path, default=None, help="kubeconfig file")
    parser.add_argument("--api", default=None, help="securebuild HTTPS API URL")
    parser.add_argument("--api-ca", type=Path, default=None, help="CA file of the HTTPS API")


def register(subparsers: Any) -> None:
    start = subparsers.add_parser("start-build", help="start a build from a BuildConfig")
    start.add_argument("buildconfig", metavar="BUILDCONFIG")
    _common(start)
    source = start.add_mutually_exclusive_group()
    source.add_argument("--from-dir", type=Path, help="upload this directory as the context")
    source.add_argument("--from-archive", type=Path, help="upload this archive as the context")
    source.add_argument("--from-file", type=Path, help="upload this file (e.g. a Dockerfile)")
    start.add_argument("-e", "--env", action="append", default=[], metavar="K=V")
    start.add_argument("--build-arg", action="append", default=[], metavar="K=V")
    start.add_argument("--no-cache", action="store_true", default=None)
    start.add_argument("-F", "--follow", action="store_true", help="stream the build log")
    start.add_argument("-w", "--wait", action="store_true", help="wait for the build to end")
    start.set_defaults(func=start_build)

    logs = subparsers.add_parser("logs", help="print (or follow) a build's log")
    logs.add_argument("target", metavar="BUILD|bc/NAME")
    logs.add_argument("-f", "--follow", action="store_true")
    _common(logs)
    logs.set_defaults(func=show_logs)

    cancel = subparsers.add_parser("cancel-build", help="cancel a build")
    cancel.add_argument("build", metavar="BUILD")
    _common(cancel)
    cancel.set_defaults(func=cancel_build)


# -- helpers -----------------------------------------------------------------------------
def _kubeconfig(args: Any) -> Path:
    if args.kubeconfig:
        return Path(args.kubeconfig)
    env = os.environ.get("KUBECONFIG")
    return Path(env.split(os.pathsep)[0]) if env else Path.home() / ".kube" / "config"


def _kube(args: Any) -> Kube:
    return Kube.from_access(ClusterAccess(kubeconfig=_kubeconfig(args)))


def _namespace(args: Any) -> str:
    if args.namespace:
        return str(args.namespace)

    try:
        config = yaml.safe_load(_kubeconfig(args).read_text()) or {}
    except OSError:
        return "default"
    current = config.get("current-context")
    for context in config.get("contexts") or []:
        if context.get("name") == current:
            return str((context.get("context") or {}).get("namespace") or "default")
    return "default"


def _token(kube: Kube) -> str:
    auth: dict[str, Any] = dict(kube.configuration.auth_settings().get("BearerToken") or {})
    value = str(auth.get("value") or "")
    if not value.lower().startswith("bearer "):
        raise SecurebuildError("the kubeconfig has no bearer token for securebuild's HTTPS API")
    return value.split(" ", 1)[1]


def _api(args: Any, kube: Kube) -> SecurebuildApi:
    url = args.api or os.environ.get("SECUREBUILD_API")
    if not url:
        raise SecurebuildError("no securebuild HTTPS API: use --api URL or set SECUREBUILD_API")
    ca = args.api_ca or (
        Path(os.environ["SECUREBUILD_API_CA"]) if os.environ.get("SECUREBUILD_API_CA") else None
    )
    return SecurebuildApi(url, _token(kube), ca)


def _pairs(values: list[str], what: str) -> tuple[EnvVar, ...]:
    result = []
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise SecurebuildError(f"{what} {value!r} must be KEY=VALUE")
        result.append(EnvVar(name=key, value=val))
    return tuple(result)


def _tar_dir(directory: Path) -> bytes:
    if not directory.is_dir():
        raise SecurebuildError(f"{directory} is not a directory")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(directory, arcname=".")
    return buffer.getvalue()


def _wait_terminal(kube: Kube, namespace: str, name: str, timeout: float | None = None) -> str:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        build = kube.get(paths.build(namespace, name))
        phase = str((build.get("status") or {}).get("phase") or "New")
        if phase in TERMINAL or (deadline is not None and time.monotonic() > deadline):
            return phase
        time.sleep(0.5)


# -- commands ----------------------------------------------------------------------------
def start_build(args: Any) -> int:
    kube = _kube(args)
    namespace = _namespace(args)
    name = args.buildconfig
    if args.from_dir or args.from_archive or args.from_file:
        if args.env:
            print(
                "warning: Build environment variables are not supported with binary builds",
                file=sys.stderr,
            )
        if args.from_dir:
            body, as_file = _tar_dir(args.from_dir), None
        elif args.from_archive:
            body, as_file = Path(args.from_archive).read_bytes(), None
        else:
            body, as_file = Path(args.from_file).read_bytes(), Path(args.from_file).name
        build = _api(args, kube).instantiate_binary(namespace, name, body, as_file)
    else:
        request = BuildRequest(
            env=_pairs(args.env, "--env"),
            build_args=_pairs(args.build_arg, "--build-arg"),
            no_cache=args.no_cache,
        )
        build = _instantiate(kube, namespace, name, request)
    build_name = build["metadata"]["name"]
    print(f"build.build.openshift.io/{build_name} started", flush=True)
    if args.follow:
        try:
            for line in _api(args, kube).log_lines(namespace, build_name, follow=True):
                print(line, flush=True)
        except SecurebuildError:
            print(
                f"Failed to stream the build logs - to view the logs, run "
                f"securebuild logs build/{build_name}",
                file=sys.stderr,
            )
    if args.wait:
        phase = _wait_terminal(kube, namespace, build_name)
        if phase != "Complete":
            raise SecurebuildError(f'the build {namespace}/{build_name} status is "{phase}"')
    return 0


def _instantiate(kube: Kube, namespace: str, name: str, request: BuildRequest) -> dict[str, Any]:
    """OpenShift's instantiate subresource if served, else generate the Build ourselves."""
    body: dict[str, Any] = {
        "kind": "BuildRequest",
        "apiVersion": "build.openshift.io/v1",
        "metadata": {"name": name},
        "triggeredBy": [{"message": "Manually triggered"}],
    }
    if request.env:
        body["env"] = [e.to_json() for e in request.env]
    options: dict[str, Any] = {}
    if request.build_args:
        options["buildArgs"] = [e.to_json() for e in request.build_args]
    if request.no_cache is not None:
        options["noCache"] = request.no_cache
    if options:
        body["dockerStrategyOptions"] = options
    try:
        result: dict[str, Any] = kube.request(
            "POST", paths.buildconfig(namespace, name) + "/instantiate", body=body
        )
        return result
    except ApiError as exc:
        if exc.status not in (404, 405):
            raise
    try:
        return instantiate(kube, namespace, name, request)
    except ApiError as exc:
        if exc.not_found:
            raise SecurebuildError(
                f'buildconfigs.build.openshift.io "{name}" not found in {namespace}'
            ) from exc
        raise


def show_logs(args: Any) -> int:
    kube = _kube(args)
    namespace = _namespace(args)
    target = args.target
    if target.startswith(("bc/", "buildconfig/", "buildconfigs/")):
        bc = target.split("/", 1)[1]
        items = kube.get(paths.builds(namespace), labelSelector=f"{LABEL_BC}={bc}").get("items")
        if not items:
            raise SecurebuildError(f"no builds found for buildconfig {bc}")
        latest = max(
            items, key=lambda b: (b["metadata"].get("creationTimestamp", ""), b["metadata"]["name"])
        )
        name = latest["metadata"]["name"]
    else:
        name = target.split("/", 1)[1] if target.startswith(("build/", "builds/")) else target
    for line in _api(args, kube).log_lines(namespace, name, follow=args.follow):
        print(line, flush=True)
    return 0


def cancel_build(args: Any) -> int:
    kube = _kube(args)
    namespace = _namespace(args)
    name = args.build.split("/", 1)[1] if "/" in args.build else args.build
    build = kube.get(paths.build(namespace, name))
    phase = (build.get("status") or {}).get("phase") or "New"
    if phase in TERMINAL:
        raise SecurebuildError(f"build {namespace}/{name} is already {phase}")
    deadline = time.monotonic() + 30
    while True:  # oc retries conflicts for up to 30 s
        try:
            kube.request(
                "PATCH",
                paths.build_status(namespace, name),
                body={
                    "metadata": {"resourceVersion": build["metadata"]["resourceVersion"]},
                    "status": {"cancelled": True},
                },
                content_type="application/merge-patch+json",
            )
            break
        except ApiError as exc:
            if not exc.conflict or time.monotonic() > deadline:
                raise
            build = kube.get(paths.build(namespace, name))
    print(
        f"build.build.openshift.io/{name} marked for cancellation, waiting to be cancelled",
        flush=True,
    )
    phase = _wait_terminal(kube, namespace, name, timeout=30)
    if phase != "Cancelled":
        raise SecurebuildError(f"build {namespace}/{name} is {phase}, not Cancelled, after 30 s")
    print(f"build.build.openshift.io/{name} cancelled")
    return 0
