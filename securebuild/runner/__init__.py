"""ansible-runner adapter: private data dir per run, extravars, events -> log + stages, cancel.

Public API: :class:`PlaybookRun`, :class:`RunSpec`, :class:`RunResult`, :func:`build_extravars`,
:func:`mark_unsafe`. The adapter does not import the log store (same layer); the daemon passes
``BuildLog.append`` as ``on_line``.
"""

from securebuild.runner.adapter import PlaybookRun, RunnerError, RunResult, RunSpec
from securebuild.runner.extravars import build_extravars, mark_unsafe

__all__ = [
    "PlaybookRun",
    "RunResult",
    "RunSpec",
    "RunnerError",
    "build_extravars",
    "mark_unsafe",
]
