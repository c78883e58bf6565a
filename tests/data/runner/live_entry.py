"""Entry point for live_python.yml (imported by the securebuild_live_python action in the
task's worker): prints a line, sleeps, prints another, returns the status it is given."""

from __future__ import annotations

import sys
import time


def main(argv: list[str]) -> int:
    pause, status = float(argv[0]), int(argv[1])
    print("first line from python")
    sys.stdout.flush()
    time.sleep(pause)
    print("second line", end="")  # no newline: still one line in the log
    return status
