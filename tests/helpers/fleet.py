"""A Fleet's files for tests that run stand-in VM playbooks on localhost.

Real ``ansible-playbook`` and ``ansible-inventory`` run; the playbooks are the test's own, so a
test checks what the Fleet decides and hands the operators' playbooks, not what a VM does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from securebuild.fleet.placement import write_placement

ROOT = Path(__file__).resolve().parents[2]


def local_fleet_files(
    tmp_path: Path, playbooks: dict[str, str], host_vars: dict[str, Any], project: str
) -> tuple[Path, Path, Path]:
    """(inventory, state dir, project dir): ``playbooks`` (name to text) under the project
    dir's playbooks/, one build host ``localhost`` with ``host_vars``, and ``project``
    already placed on it."""
    project_dir = tmp_path / "project"
    (project_dir / "playbooks").mkdir(parents=True)
    (project_dir / "ansible.cfg").symlink_to(ROOT / "ansible.cfg")
    for name, text in playbooks.items():
        (project_dir / "playbooks" / name).write_text(text)
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": "{{ ansible_playbook_python }}",
        **host_vars,
    }
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"build_hosts": {"hosts": {"localhost": host}}}))
    state = tmp_path / "state"
    write_placement(state, project, "localhost")
    return inventory, state, project_dir


def recording_playbook(stand_in_for: str, line: str, file: str) -> str:
    """A playbook that only appends ``line`` (a Jinja expression over the variables the Fleet
    passes) to ``<securebuild_state_dir>/<file>``: a stand-in for ``stand_in_for``."""
    return f"""\
- name: Record the call (stand-in for {stand_in_for})
  hosts: "{{{{ securebuild_build_host }}}}"
  gather_facts: false
  tasks:
    - name: Append to the calls file
      ansible.builtin.lineinfile:
        path: "{{{{ securebuild_state_dir }}}}/{file}"
        line: "{{{{ {line} }}}}"
        create: true
        mode: "0600"
"""
