#!/usr/bin/python
"""Documentation of the ``securebuild_live_python`` action (``../action/``); never runs itself.

The work is done by the action plugin of the same name in the task's worker process (see its
docstring). This file gives ansible-doc and ansible-lint the argument documentation, as
Ansible's own action-only modules (``ansible.builtin.debug``...) do.
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: securebuild_live_python
short_description: Run a Python entry point in-process, streaming its output to a live log file
description:
  - Imports O(module) in the task's worker process on the controller and calls its
    C(main(argv)); each line it writes to stdout is appended to O(live_log) as it is written.
  - Runs on the controller only (an action plugin).
options:
  module:
    description: Python module with a C(main(argv) -> int) function.
    type: str
    required: true
  argv:
    description: Arguments for C(main).
    type: list
    elements: str
    default: []
  live_log:
    description: File the output lines are appended to (the adapter's securebuild_live_log).
    type: path
    required: true
  json_file:
    description: File written (0600) with O(json_data) as JSON before the entry point runs.
    type: path
  json_data:
    description: Data for O(json_file).
    type: raw
  tail_lines:
    description: How many of the last output lines to return in C(stdout_lines).
    type: int
    default: 20
"""

RETURN = r"""
rc:
  description: Return value of C(main) (1 for an exception, whose trace is in the live log).
  type: int
stdout_lines:
  description: The last O(tail_lines) lines of output (all lines are in the live log).
  type: list
securebuild_live:
  description: Always true; tells the adapter the output already reached the log.
  type: bool
"""


def main() -> None:
    module = AnsibleModule(argument_spec={}, bypass_checks=True)
    module.fail_json(msg="securebuild_live_python runs as an action plugin on the controller")


if __name__ == "__main__":
    main()
