"""Generate the CRDs for OpenShift's build and image types (run: python deploy/crds/generate.py).

The schemas follow openshift/api ``build/v1/types.go`` and ``image/v1/types.go``: same field names,
same JSON types (int64 -> integer/int64, metav1.Time -> date-time string, time.Duration ->
integer nanoseconds), every field of the types, not only those securebuild reads. That is what lets
YAML written for OpenShift apply unchanged, even with ``kubectl apply --validate=strict``, which
rejects fields a schema does not know. Shared Kubernetes types (ObjectReference, EnvVar,
ResourceRequirements, volume sources) are written out too, so the schemas stay structural.

The YAML files beside this script are its output and are committed, so operators need no Python;
a unit test checks that they are up to date.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
Schema = dict[str, Any]


def string(**extra: Any) -> Schema:
    return {"type": "string", **extra}


def boolean() -> Schema:
    return {"type": "boolean"}


def int64() -> Schema:
    return {"type": "integer", "format": "int64"}


def int32() -> Schema:
    return {"type": "integer", "format": "int32"}


def time() -> Schema:
    """metav1.Time: RFC 3339 in UTC; null values are pruned by the API server."""
    return {"type": "string", "format": "date-time"}


def obj(properties: dict[str, Schema], required: list[str] | None = None) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def string_map() -> Schema:
    return {"type": "object", "additionalProperties": {"type": "string"}}


def quantity() -> Schema:
    return {
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "x-kubernetes-int-or-string": True,
    }


# --- Kubernetes core types used by the OpenShift types ---------------------------------------


def object_reference() -> Schema:
    return obj(
        {
            "kind": string(),
            "namespace": string(),
            "name": string(),
            "uid": string(),
            "apiVersion": string(),
            "resourceVersion": string(),
            "fieldPath": string(),
        }
    )


def local_object_reference() -> Schema:
    return obj({"name": string()})


def key_selector() -> Schema:
    return obj({"name": string(), "key": string(), "optional": boolean()}, ["key"])


def env_var() -> Schema:
    return obj(
        {
            "name": string(),
            "value": string(),
            "valueFrom": obj(
                {
                    "fieldRef": obj({"apiVersion": string(), "fieldPath": string()}, ["fieldPath"]),
                    "resourceFieldRef": obj(
                        {"containerName": string(), "resource": string(), "divisor": quantity()},
                        ["resource"],
                    ),
                    "configMapKeyRef": key_selector(),
                    "secretKeyRef": key_selector(),
                }
            ),
        },
        ["name"],
    )


def env_list() -> Schema:
    return array(env_var())


def resource_requirements() -> Schema:
    return obj(
        {
            "limits": {"type": "object", "additionalProperties": quantity()},
            "requests": {"type": "object", "additionalProperties": quantity()},
            "claims": array(obj({"name": string(), "request": string()}, ["name"])),
        }
    )


def key_to_path_list() -> Schema:
    return array(obj({"key": string(), "path": string(), "mode": int32()}, ["key", "path"]))


def secret_volume_source() -> Schema:
    return obj(
        {
            "secretName": string(),
            "items": key_to_path_list(),
            "defaultMode": int32(),
            "optional": boolean(),
        }
    )


def config_map_volume_source() -> Schema:
    return obj(
        {
            "name": string(),
            "items": key_to_path_list(),
            "defaultMode": int32(),
            "optional": boolean(),
        }
    )


def csi_volume_source() -> Schema:
    return obj(
        {
            "driver": string(),
            "readOnly": boolean(),
            "fsType": string(),
            "volumeAttributes": string_map(),
            "nodePublishSecretRef": local_object_reference(),
        },
        ["driver"],
    )


# --- build.openshift.io/v1 --------------------------------------------------------------------

SOURCE_TYPES = ["Git", "Dockerfile", "Binary", "Image", "None"]
STRATEGY_TYPES = ["Docker", "Source", "Custom", "JenkinsPipeline"]
PHASES = ["New", "Pending", "Running", "Complete", "Failed", "Error", "Cancelled"]


def source_control_user() -> Schema:
    return obj({"name": string(), "email": string()})


def source_revision() -> Schema:
    return obj(
        {
            "type": string(),
            "git": obj(
                {
                    "commit": string(),
                    "author": source_control_user(),
                    "committer": source_control_user(),
                    "message": string(),
                }
            ),
        }
    )


def build_source() -> Schema:
    return obj(
        {
            "type": string(enum=SOURCE_TYPES),
            "binary": obj({"asFile": string()}),
            # The API server limits an inline Dockerfile to 60,000 bytes (validation).
            "dockerfile": string(maxLength=60000),
            "git": obj(
                {
                    "uri": string(),
                    "ref": string(),
                    "httpProxy": string(),
                    "httpsProxy": string(),
                    "noProxy": string(),
                },
                ["uri"],
            ),
            "images": array(
                obj(
                    {
                        "from": object_reference(),
                        "as": array(string()),
                        "paths": array(
                            obj(
                                {"sourcePath": string(), "destinationDir": string()},
                                ["sourcePath"],
                            )
                        ),
                        "pullSecret": local_object_reference(),
                    },
                    ["from"],
                )
            ),
            "contextDir": string(),
            "sourceSecret": local_object_reference(),
            "secrets": array(
                obj(
                    {"secret": local_object_reference(), "destinationDir": string()},
                    ["secret"],
                )
            ),
            "configMaps": array(
                obj(
                    {"configMap": local_object_reference(), "destinationDir": string()},
                    ["configMap"],
                )
            ),
        }
    )


def build_volumes() -> Schema:
    schema = array(
        obj(
            {
                "name": string(),
                "source": obj(
                    {
                        "type": string(enum=["Secret", "ConfigMap", "CSI"]),
                        "secret": secret_volume_source(),
                        "configMap": config_map_volume_source(),
                        "csi": csi_volume_source(),
                    },
                    ["type"],
                ),
                "mounts": {
                    **array(obj({"destinationPath": string()}, ["destinationPath"])),
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["destinationPath"],
                },
            },
            ["name", "source", "mounts"],
        )
    )
    schema["x-kubernetes-list-type"] = "map"
    schema["x-kubernetes-list-map-keys"] = ["name"]
    return schema


def build_strategy() -> Schema:
    return obj(
        {
            "type": string(enum=STRATEGY_TYPES),
            "dockerStrategy": obj(
                {
                    "from": object_reference(),
                    "pullSecret": local_object_reference(),
                    "noCache": boolean(),
                    "env": env_list(),
                    "forcePull": boolean(),
                    "dockerfilePath": string(),
                    "buildArgs": env_list(),
                    "imageOptimizationPolicy": string(
                        enum=["None", "SkipLayers", "SkipLayersAndWarn"]
                    ),
                    "volumes": build_volumes(),
                }
            ),
            "sourceStrategy": obj(
                {
                    "from": object_reference(),
                    "pullSecret": local_object_reference(),
                    "env": env_list(),
                    "scripts": string(),
                    "incremental": boolean(),
                    "forcePull": boolean(),
                    "volumes": build_volumes(),
                }
            ),
            "customStrategy": obj(
                {
                    "from": object_reference(),
                    "pullSecret": local_object_reference(),
                    "env": env_list(),
                    "exposeDockerSocket": boolean(),
                    "forcePull": boolean(),
                    "secrets": array(
                        obj(
                            {"secretSource": local_object_reference(), "mountPath": string()},
                            ["secretSource", "mountPath"],
                        )
                    ),
                    "buildAPIVersion": string(),
                }
            ),
            "jenkinsPipelineStrategy": obj(
                {"jenkinsfilePath": string(), "jenkinsfile": string(), "env": env_list()}
            ),
        }
    )


def common_spec() -> dict[str, Schema]:
    """CommonSpec, inlined in BuildSpec and BuildConfigSpec."""
    return {
        "serviceAccount": string(),
        "source": build_source(),
        "revision": source_revision(),
        "strategy": build_strategy(),
        "output": obj(
            {
                "to": object_reference(),
                "pushSecret": local_object_reference(),
                "imageLabels": array(obj({"name": string(), "value": string()}, ["name"])),
            }
        ),
        "resources": resource_requirements(),
        "postCommit": obj(
            {"command": array(string()), "args": array(string()), "script": string()}
        ),
        "completionDeadlineSeconds": int64(),
        "nodeSelector": string_map(),
        "mountTrustedCA": boolean(),
    }


def webhook_cause() -> Schema:
    return obj({"revision": source_revision(), "secret": string()})


def trigger_cause() -> Schema:
    return obj(
        {
            "message": string(),
            "genericWebHook": webhook_cause(),
            "githubWebHook": webhook_cause(),
            "imageChangeBuild": obj({"imageID": string(), "fromRef": object_reference()}),
            "gitlabWebHook": webhook_cause(),
            "bitbucketWebHook": webhook_cause(),
        }
    )


def stage_timing(extra: dict[str, Schema] | None = None) -> Schema:
    return obj(
        {"name": string(), "startTime": time(), "durationMilliseconds": int64(), **(extra or {})}
    )


def build_status() -> Schema:
    return obj(
        {
            "phase": string(enum=PHASES),
            "cancelled": boolean(),
            "reason": string(),
            "message": string(),
            "startTimestamp": time(),
            "completionTimestamp": time(),
            # time.Duration: integer nanoseconds in JSON.
            "duration": int64(),
            "outputDockerImageReference": string(),
            "config": object_reference(),
            "output": obj({"to": obj({"imageDigest": string()})}),
            "stages": array(stage_timing({"steps": array(stage_timing())})),
            "logSnippet": string(),
            "conditions": array(
                obj(
                    {
                        "type": string(),
                        "status": string(),
                        "lastUpdateTime": time(),
                        "lastTransitionTime": time(),
                        "reason": string(),
                        "message": string(),
                    },
                    ["type", "status"],
                )
            ),
        }
    )


def webhook_trigger() -> Schema:
    return obj(
        {
            "secret": string(),
            "allowEnv": boolean(),
            "secretReference": obj({"name": string()}, ["name"]),
        }
    )


def build_config_spec() -> Schema:
    return obj(
        {
            "triggers": array(
                obj(
                    {
                        "type": string(
                            enum=[
                                "GitHub",
                                "github",
                                "Generic",
                                "generic",
                                "GitLab",
                                "Bitbucket",
                                "ImageChange",
                                "imageChange",
                                "ConfigChange",
                            ]
                        ),
                        "github": webhook_trigger(),
                        "generic": webhook_trigger(),
                        "imageChange": obj(
                            {
                                "lastTriggeredImageID": string(),
                                "from": object_reference(),
                                "paused": boolean(),
                            }
                        ),
                        "gitlab": webhook_trigger(),
                        "bitbucket": webhook_trigger(),
                    },
                    ["type"],
                )
            ),
            "runPolicy": string(enum=["Serial", "SerialLatestOnly", "Parallel"]),
            **common_spec(),
            "successfulBuildsHistoryLimit": int32(),
            "failedBuildsHistoryLimit": int32(),
        }
    )


def build_config_status() -> Schema:
    return obj(
        {
            "lastVersion": int64(),
            "imageChangeTriggers": array(
                obj(
                    {
                        "lastTriggeredImageID": string(),
                        "from": obj({"namespace": string(), "name": string()}),
                        "lastTriggerTime": time(),
                    }
                )
            ),
        }
    )


# --- image.openshift.io/v1 --------------------------------------------------------------------


def image_stream_spec() -> Schema:
    return obj(
        {
            "lookupPolicy": obj({"local": boolean()}),
            "dockerImageRepository": string(),
            "tags": array(
                obj(
                    {
                        "name": string(),
                        "annotations": string_map(),
                        "from": object_reference(),
                        "reference": boolean(),
                        "generation": int64(),
                        "importPolicy": obj(
                            {"insecure": boolean(), "scheduled": boolean(), "importMode": string()}
                        ),
                        "referencePolicy": obj({"type": string(enum=["Source", "Local"])}),
                    },
                    ["name"],
                )
            ),
        }
    )


def image_stream_status() -> Schema:
    return obj(
        {
            "dockerImageRepository": string(),
            "publicDockerImageRepository": string(),
            "tags": array(
                obj(
                    {
                        "tag": string(),
                        "items": array(
                            obj(
                                {
                                    "created": time(),
                                    "dockerImageReference": string(),
                                    "image": string(),
                                    "generation": int64(),
                                }
                            )
                        ),
                        "conditions": array(
                            obj(
                                {
                                    "type": string(),
                                    "status": string(),
                                    "lastTransitionTime": time(),
                                    "reason": string(),
                                    "message": string(),
                                    "generation": int64(),
                                },
                                ["type", "status"],
                            )
                        ),
                    },
                    ["tag"],
                )
            ),
        }
    )


# --- CRDs -------------------------------------------------------------------------------------


def column(name: str, json_path: str, kind: str = "string", priority: int = 0) -> Schema:
    col: Schema = {"name": name, "type": kind, "jsonPath": json_path}
    if priority:
        col["priority"] = priority
    return col


def crd(
    *,
    group: str,
    kind: str,
    plural: str,
    spec: Schema,
    status: Schema,
    columns: list[Schema],
    short_names: list[str] | None = None,
) -> Schema:
    names: Schema = {
        "kind": kind,
        "listKind": f"{kind}List",
        "plural": plural,
        "singular": kind.lower(),
        "categories": ["all"],
    }
    if short_names:
        names["shortNames"] = short_names
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{group}",
            "labels": {"app.kubernetes.io/part-of": "securebuild"},
            "annotations": {
                "securebuild.io/source": "openshift/api " + group.split(".")[0] + "/v1 types.go"
            },
        },
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": names,
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": obj(
                            {
                                "apiVersion": string(),
                                "kind": string(),
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            }
                        )
                    },
                }
            ],
        },
    }


def all_crds() -> dict[str, Schema]:
    """File name -> CRD document."""
    build_spec = obj({**common_spec(), "triggeredBy": array(trigger_cause())})
    return {
        "build.openshift.io_builds.yaml": crd(
            group="build.openshift.io",
            kind="Build",
            plural="builds",
            spec=build_spec,
            status=build_status(),
            columns=[
                column("Type", ".spec.strategy.type"),
                column("From", ".spec.source.type"),
                column("Status", ".status.phase"),
                column("Started", ".status.startTimestamp", "date"),
                column("Completed", ".status.completionTimestamp", "date"),
                column("Reason", ".status.reason", priority=1),
            ],
        ),
        "build.openshift.io_buildconfigs.yaml": crd(
            group="build.openshift.io",
            kind="BuildConfig",
            plural="buildconfigs",
            spec=build_config_spec(),
            status=build_config_status(),
            columns=[
                column("Type", ".spec.strategy.type"),
                column("From", ".spec.source.type"),
                column("Latest", ".status.lastVersion", "integer"),
            ],
            short_names=["bc"],
        ),
        "image.openshift.io_imagestreams.yaml": crd(
            group="image.openshift.io",
            kind="ImageStream",
            plural="imagestreams",
            spec=image_stream_spec(),
            status=image_stream_status(),
            columns=[column("Image Repository", ".status.dockerImageRepository")],
            short_names=["is"],
        ),
    }


HEADER = "# Generated by deploy/crds/generate.py from openshift/api types; do not edit by hand.\n"


class _IndentedDumper(yaml.SafeDumper):
    """Indent list items under their key, as yamllint's default config (and kubectl) expect."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def render(doc: Schema) -> str:
    body = yaml.dump(doc, Dumper=_IndentedDumper, sort_keys=False, width=100)
    return HEADER + "---\n" + body


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, doc in all_crds().items():
        path = HERE / name
        text = render(doc)
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        sys.stderr.write(f"stale: {', '.join(stale)}; run python deploy/crds/generate.py\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
