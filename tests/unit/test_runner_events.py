"""securebuild.runner.events: ansible-runner events -> status.stages (synthetic events, no run)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from securebuild.runner.events import EventProcessor, TaskMetaReader


def _event(kind: str, uuid: str, second: float, host: str = "vm") -> dict[str, Any]:
    minute, sec = divmod(second, 60)
    return {
        "event": kind,
        "created": f"2026-01-01T10:{int(minute):02d}:{sec:06.3f}",
        "event_data": {"task_uuid": uuid, "task": uuid, "host": host, "res": {}},
    }


def test_steps_merge_extend_and_become_the_models_stages(tmp_path: Path) -> None:
    tags = {
        "clone": ["stage:FetchInputs", "step:FetchGitSource"],
        "pull": ["stage:PullImages", "step:PullBaseImage"],
        "build1": ["stage:Build", "step:DockerBuild"],
        "build2": ["stage:Build", "step:DockerBuild"],
        "pull2": ["stage:PullImages", "step:PullBaseImage"],
        "untagged": [],
    }
    meta = tmp_path / "meta.jsonl"
    meta.write_text("".join(json.dumps({"uuid": u, "tags": t}) + "\n" for u, t in tags.items()))
    processor = EventProcessor(TaskMetaReader(meta), emit=lambda _lines: None)
    timeline = [
        ("clone", 0.0, 1.5),
        ("pull", 2.0, 3.0),
        ("build1", 3.0, 4.0),
        ("build2", 4.0, 6.25),  # consecutive task of the same step: one step
        ("untagged", 6.5, 7.0),
        ("pull2", 7.0, 9.0),  # a later step of an earlier stage: appended to it
    ]
    for uuid, start, end in timeline:
        processor.handle(_event("playbook_on_task_start", uuid, start))
        processor.handle(_event("runner_on_ok", uuid, end))
    processor.handle(_event("runner_on_ok", "clone", 1.75, host="other"))  # a second host
    stages = [s.to_json() for s in processor.stages]
    assert stages == [
        {
            "name": "FetchInputs",
            "startTime": "2026-01-01T10:00:00Z",
            "durationMilliseconds": 1750,
            "steps": [
                {
                    "name": "FetchGitSource",
                    "startTime": "2026-01-01T10:00:00Z",
                    "durationMilliseconds": 1750,
                }
            ],
        },
        {
            "name": "PullImages",
            "startTime": "2026-01-01T10:00:02Z",
            "durationMilliseconds": 7000,
            "steps": [
                {
                    "name": "PullBaseImage",
                    "startTime": "2026-01-01T10:00:02Z",
                    "durationMilliseconds": 1000,
                },
                {
                    "name": "PullBaseImage",
                    "startTime": "2026-01-01T10:00:07Z",
                    "durationMilliseconds": 2000,
                },
            ],
        },
        {
            "name": "Build",
            "startTime": "2026-01-01T10:00:03Z",
            "durationMilliseconds": 3250,
            "steps": [
                {
                    "name": "DockerBuild",
                    "startTime": "2026-01-01T10:00:03Z",
                    "durationMilliseconds": 3250,
                }
            ],
        },
    ]


def test_a_task_cut_off_by_cancel_records_its_step(tmp_path: Path) -> None:
    meta = tmp_path / "meta.jsonl"
    meta.write_text(json.dumps({"uuid": "b", "tags": ["stage:Build", "step:DockerBuild"]}) + "\n")
    processor = EventProcessor(TaskMetaReader(meta), emit=lambda _lines: None)
    processor.handle(_event("playbook_on_task_start", "b", 1.0))
    processor.close_open_task(dt.datetime(2026, 1, 1, 10, 0, 3, tzinfo=dt.UTC))
    [stage] = processor.stages
    assert (stage.name, stage.duration_milliseconds) == ("Build", 2000)
