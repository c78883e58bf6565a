"""Ansible plugins shipped with the runner adapter (loaded by ansible-playbook, not imported).

``modules/securebuild_live_command.py`` runs an argv and appends its output line by line to the
run's live log; ``action/securebuild_live_python.py`` does the same for a Python entry point run
in the task's worker process (no Python start per step; its documentation stub is in
``modules/``); ``callback/securebuild_task_meta.py`` tells the adapter each task's tags. The
adapter puts the directories on ``ANSIBLE_LIBRARY`` / ``ANSIBLE_ACTION_PLUGINS`` /
``ANSIBLE_CALLBACK_PLUGINS``.
"""

from pathlib import Path

MODULES_DIR = Path(__file__).parent / "modules"
CALLBACK_DIR = Path(__file__).parent / "callback"
ACTION_DIR = Path(__file__).parent / "action"
