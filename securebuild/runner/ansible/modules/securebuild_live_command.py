#!/usr/bin/python
"""Ansible module: run an argv and append its output, line by line, to a live log file.

Why not ``ansible.builtin.command``: its output reaches the controller only when the task
ends. Build output must reach the build log as it is produced (DESIGN section 4), so this
module writes each line of the process's merged stdout/stderr to ``live_log`` the moment it
is read; the runner adapter follows that file into the log store. It runs where the task runs:
on the controller (``connection: local`` / ``delegate_to: localhost``) the file is the one in the
run's private data dir that the adapter follows.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections import deque

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: securebuild_live_command
short_description: Run an argv, streaming its output line by line to a live log file
description:
  - Runs O(argv) (never through a shell) with stdout and stderr merged, appending each line
    to O(live_log) as soon as it is produced.
options:
  argv:
    description: Program and arguments.
    type: list
    elements: str
    required: true
  live_log:
    description: File the output lines are appended to (the adapter's securebuild_live_log).
    type: path
    required: true
  chdir:
    description: Working directory.
    type: path
  env:
    description: Extra environment variables for the process.
    type: dict
    default: {}
  timeout:
    description: Seconds after which the process is killed (0 means no limit).
    type: int
    default: 0
  tail_lines:
    description: How many of the last output lines to return in C(stdout_lines).
    type: int
    default: 20
"""

RETURN = r"""
rc:
  description: Exit status of the process (negative for a signal).
  type: int
stdout_lines:
  description: The last O(tail_lines) lines of output (all lines are in the live log).
  type: list
securebuild_live:
  description: Always true; tells the adapter the output already reached the log.
  type: bool
"""


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "argv": {"type": "list", "elements": "str", "required": True},
            "live_log": {"type": "path", "required": True},
            "chdir": {"type": "path"},
            "env": {"type": "dict", "default": {}},
            "timeout": {"type": "int", "default": 0},
            "tail_lines": {"type": "int", "default": 20},
        },
        supports_check_mode=False,
    )
    params = module.params
    env = dict(os.environ)
    env.update({str(k): str(v) for k, v in params["env"].items()})
    tail: deque[str] = deque(maxlen=max(params["tail_lines"], 0))
    fd = os.open(params["live_log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        proc = subprocess.Popen(
            params["argv"],
            cwd=params["chdir"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    except OSError as exc:
        os.close(fd)
        module.fail_json(
            msg=f"cannot run {params['argv'][0]}: {exc}", rc=127, securebuild_live=True
        )
    timer = None
    timed_out = threading.Event()
    if params["timeout"] > 0:

        def kill() -> None:
            timed_out.set()
            proc.kill()

        timer = threading.Timer(params["timeout"], kill)
        timer.start()
    assert proc.stdout is not None
    try:
        for raw in iter(proc.stdout.readline, b""):
            line = raw if raw.endswith(b"\n") else raw + b"\n"
            os.write(fd, line)
            tail.append(line.decode("utf-8", "replace").rstrip("\n").rstrip("\r"))
        rc = proc.wait()
    finally:
        if timer is not None:
            timer.cancel()
        os.close(fd)
    result = {"rc": rc, "stdout_lines": list(tail), "securebuild_live": True, "changed": True}
    if timed_out.is_set():
        module.fail_json(msg=f"timed out after {params['timeout']} s", **result)
    if rc != 0:
        module.fail_json(msg=f"{params['argv'][0]} exited with status {rc}", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
