"""A project's build slots: flock files in the state dir, one per allowed concurrent build."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from securebuild.daemon.slots import ProjectSlots

ROOT = Path(__file__).resolve().parents[2]


def test_a_project_has_as_many_slots_as_builds_it_may_run(tmp_path: Path) -> None:
    slots = ProjectSlots(tmp_path, per_project=2)
    first, second = slots.take("demo"), slots.take("demo")
    assert first is not None and second is not None
    assert slots.take("demo") is None  # both held
    other = slots.take("other")  # another project's slots are its own
    assert other is not None
    first.close()
    again = slots.take("demo")
    assert again is not None
    for stack in (second, other, again):
        stack.close()


def test_a_slot_held_by_another_process_is_not_free(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path;"
            "from securebuild.daemon.slots import ProjectSlots;"
            "s = ProjectSlots(Path(sys.argv[1]), 1).take('demo'); print(s is not None, flush=True);"
            "time.sleep(60)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "True"
        assert ProjectSlots(tmp_path, 1).take("demo") is None
    finally:
        holder.kill()
        holder.wait()
    freed = ProjectSlots(tmp_path, 1).take("demo")  # a killed holder loses its slot
    assert freed is not None
    freed.close()
