"""Status semantics: phases and transitions, exact reasons, stages, snippet, events, duration."""

from __future__ import annotations

import datetime as dt

import pytest

from securebuild.model import events, status
from securebuild.model.logsnippet import log_snippet
from securebuild.model.status import Phase, can_change_reason, can_transition

P = Phase

TRANSITIONS = [
    (P.NEW, P.PENDING, True),
    (P.NEW, P.RUNNING, True),
    (P.NEW, P.CANCELLED, True),
    (P.NEW, P.FAILED, True),
    (P.PENDING, P.RUNNING, True),
    (P.PENDING, P.NEW, False),
    (P.PENDING, P.ERROR, True),
    (P.RUNNING, P.COMPLETE, True),
    (P.RUNNING, P.FAILED, True),
    (P.RUNNING, P.NEW, False),
    (P.RUNNING, P.PENDING, False),
    (P.RUNNING, P.RUNNING, True),
    (None, P.NEW, True),
    *[(t, other, t == other) for t in status.TERMINAL_PHASES for other in P],
]


@pytest.mark.parametrize(("old", "new", "allowed"), TRANSITIONS)
def test_transitions(old: Phase | None, new: Phase, allowed: bool) -> None:
    assert can_transition(old, new) is allowed


def test_terminal_phases() -> None:
    assert {p.value for p in status.TERMINAL_PHASES} == {"Complete", "Failed", "Error", "Cancelled"}
    assert not Phase.RUNNING.is_terminal


@pytest.mark.parametrize(
    ("phase", "old", "new", "allowed"),
    [
        ("Failed", "DockerBuildFailed", "GenericBuildFailed", False),
        ("Failed", "DockerBuildFailed", "OutOfMemoryKilled", True),
        ("Failed", "DockerBuildFailed", "DockerBuildFailed", True),
        ("Failed", None, "GenericBuildFailed", True),
        ("New", "InvalidOutputReference", "GenericBuildFailed", True),
    ],
)
def test_failed_reason_is_sticky(phase: str, old: str | None, new: str, allowed: bool) -> None:
    assert can_change_reason(phase, old, new) is allowed


# Every fixed reason/message pair of reference 2.2, verbatim.
REASONS = {
    "FetchSourceFailed": "Failed to fetch the input source.",
    "InvalidContextDirectory": "The supplied context directory does not exist.",
    "FetchImageContentFailed": "Failed to extract image content.",
    "ManageDockerfileFailed": "Failed to prepare the dockerfile for the build.",
    "PullBuilderImageFailed": "Failed pulling builder image.",
    "DockerBuildFailed": "Dockerfile build strategy has failed.",
    "PushImageToRegistryFailed": "Failed to push the image to the registry.",
    "InvalidOutputReference": "Output image could not be resolved.",
    "InvalidImageReference": "Referenced image could not be resolved.",
    "CannotRetrieveServiceAccount": "Unable to look up the service account secrets for this build.",
    "CannotCreateCAConfigMap": "Failed creating build certificate authority configMap.",
    "CannotCreateGlobalCAConfigMap": "Failed creating build proxy certificate authority configMap.",
    "CannotCreateBuildSysConfigMap": "Failed creating build system config configMap.",
    "BuildPodExists": "The pod for this build already exists and is older than the build.",
    "MissingPushSecret": "Missing push secret.",
    "BuildPodDeleted": "The pod for this build was deleted before the build completed.",
    "NoBuildContainerStatus": (
        "The pod for this build has no container statuses indicating success or failure."
    ),
    "FailedContainer": (
        "The pod for this build has at least one container with a non-zero exit status."
    ),
    "OutOfMemoryKilled": "The build pod was killed due to an out of memory condition.",
    "GenericBuildFailed": "Generic Build failure - check logs for details.",
    "CancelledBuild": "The build was cancelled by the user.",
    # securebuild's own hook reasons (no OpenShift counterpart; DESIGN section 5)
    "PreBuildHookFailed": "The pre_build hook has failed.",
    "PostBuildHookFailed": "The post_build hook has failed.",
}


def test_every_reason_message_pair_is_defined() -> None:
    defined = {
        value.reason: value.message
        for value in vars(status).values()
        if isinstance(value, status.StatusReason)
    }
    assert defined == REASONS


def test_reasons_with_details() -> None:
    assert status.missing_resources(["a", "b"], ["c"]).message == (
        "These resources do not exist: ConfigMaps [a, b] Secrets [c]"
    )
    assert (
        status.missing_resources(secrets=["c"]).message
        == "These resources do not exist: Secrets [c]"
    )
    assert status.cannot_create_build_pod_spec("x").message == "Failed to create pod spec: x"
    assert status.cannot_create_build_pod("x").message == "Failed creating build pod: x"
    assert status.unresolvable_environment_variable("x") == status.StatusReason(
        "UnresolvableEnvironmentVariable",
        "Unable to resolve build environment variable reference., x",
    )
    assert status.build_pod_evicted("The node was low on memory.").reason == "BuildPodEvicted"


def test_stage_and_step_names() -> None:
    assert [(str(a), str(b)) for a, b in status.DOCKER_BUILD_STEPS] == [
        ("FetchInputs", "FetchGitSource"),
        ("PullImages", "PullBaseImage"),
        ("Build", "DockerBuild"),
        ("PushImage", "PushDockerImage"),
    ]


def test_record_step_appends_and_extends_the_stage() -> None:
    t0 = dt.datetime(2024, 3, 4, 10, 0, 0, tzinfo=dt.UTC)
    stages = status.record_step((), status.StageName.PULL_IMAGES, "PullBaseImage", t0, 1500)
    stages = status.record_step(
        stages, "PullImages", "PullBaseImage", t0 + dt.timedelta(seconds=2), 1000
    )
    stages = status.record_step(stages, "Build", "DockerBuild", t0 + dt.timedelta(seconds=3), 10)
    assert [s.name for s in stages] == ["PullImages", "Build"]
    pull = stages[0]
    assert pull.start_time == "2024-03-04T10:00:00Z"
    assert pull.duration_milliseconds == 3000
    assert [s.duration_milliseconds for s in pull.steps] == [1500, 1000]
    assert pull.steps[1].start_time == "2024-03-04T10:00:02Z"


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("2024-03-04T10:11:12Z", "2024-03-04T10:12:13Z", 61_000_000_000),
        ("2024-03-04T10:11:12.900Z", "2024-03-04T10:11:13.100Z", 1_000_000_000),
        ("2024-03-04T10:11:12.100Z", "2024-03-04T10:11:12.900Z", 0),
        ("2024-03-04T11:11:12+01:00", "2024-03-04T10:11:14Z", 2_000_000_000),
    ],
)
def test_duration_is_integer_nanoseconds_of_whole_seconds(
    start: str, end: str, expected: int
) -> None:
    value = status.duration_ns(start, end)
    assert value == expected
    assert isinstance(value, int)


def test_timestamps() -> None:
    when = dt.datetime(2024, 3, 4, 10, 11, 12, 999_000, tzinfo=dt.UTC)
    assert status.format_timestamp(when) == "2024-03-04T10:11:12Z"
    assert status.parse_timestamp("2024-03-04T10:11:12Z") == when.replace(microsecond=0)
    with pytest.raises(ValueError, match="timezone"):
        status.format_timestamp(dt.datetime(2024, 1, 1))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        ("\n\n", ""),
        ("one\n", "one"),
        ("1\n2\n3\n4\n5\n6\n7\n", "3\n4\n5\n6\n7"),
        ("x" * 120, "x" * 120),
        ("a" * 58 + "b" * 5 + "c" * 59, "a" * 58 + "..." + "c" * 59),
        ("a" * 58 + "M" * 100 + "z" * 59 + "\nlast", "a" * 58 + "..." + "z" * 59 + "\nlast"),
    ],
)
def test_log_snippet(text: str, expected: str) -> None:
    assert log_snippet(text) == expected


def test_log_snippet_counts_bytes_like_go() -> None:
    line = "é" * 61  # 122 bytes, 61 characters
    folded = log_snippet(line)
    assert folded == "é" * 29 + "..." + "\ufffd" + "é" * 29


@pytest.mark.parametrize(
    ("event", "reason", "kind", "message"),
    [
        (
            events.build_started("ns", "b-1"),
            "BuildStarted",
            "Normal",
            "Build ns/b-1 is now running",
        ),
        (
            events.build_completed("ns", "b-1"),
            "BuildCompleted",
            "Normal",
            "Build ns/b-1 completed successfully",
        ),
        (events.build_failed("ns", "b-1"), "BuildFailed", "Normal", "Build ns/b-1 failed"),
        (
            events.build_cancelled("ns", "b-1"),
            "BuildCancelled",
            "Normal",
            "Build ns/b-1 has been cancelled",
        ),
        (
            events.failed_create_pod("boom"),
            "FailedCreate",
            "Warning",
            "Error creating build pod: boom",
        ),
        (
            events.pod_already_exists("ns", "p"),
            "FailedCreate",
            "Warning",
            "Pod already exists: ns/p",
        ),
        (
            events.failed_create_ca_config_map("e"),
            "FailedCreate",
            "Warning",
            "Error creating build certificate authority configMap: e",
        ),
        (
            events.failed_create_global_ca_config_map("e"),
            "FailedCreate",
            "Warning",
            "Error creating build proxy certificate authority configMap: e",
        ),
        (
            events.failed_create_sys_config_map("e"),
            "FailedCreate",
            "Warning",
            "Error creating build system config configMap: e",
        ),
        (
            events.invalid_output(),
            "InvalidOutput",
            "Warning",
            "Error starting build: an image stream cannot be used as build output because the "
            "integrated container image registry is not configured",
        ),
        (
            events.unexpected_pod_phase("ns", "b-1", "Running"),
            "UnexpectedPodPhase",
            "Warning",
            "Build ns/b-1 received a pod in pending phase event while in Running phase",
        ),
    ],
)
def test_events(event: events.BuildEvent, reason: str, kind: str, message: str) -> None:
    assert (event.reason, str(event.type), event.message) == (reason, kind, message)


@pytest.mark.parametrize(
    ("phase", "reason"),
    [
        ("Running", "BuildStarted"),
        ("Complete", "BuildCompleted"),
        ("Failed", "BuildFailed"),
        ("Error", "BuildFailed"),
        ("Cancelled", "BuildCancelled"),
        ("Pending", None),
    ],
)
def test_event_for_phase(phase: str, reason: str | None) -> None:
    event = events.for_phase(phase, "ns", "b")
    assert (event.reason if event else None) == reason
