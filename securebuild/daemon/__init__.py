"""The securebuild daemon: watch -> queue -> workers -> executor -> reporter.

- :mod:`.config`: the YAML config file, validated with messages that name the key;
- :mod:`.scheduler`: run policies and concurrency limits (pure);
- :mod:`.executor`: the :class:`Executor` interface and the ansible-runner executor;
- :mod:`.reporter`: the :class:`Reporter` interface and owner mode;
- :mod:`.core`: :class:`Daemon`, the wiring;
- :mod:`.metrics`: Prometheus metrics.
"""

from securebuild.daemon.config import ConfigError, DaemonConfig, load_config, parse_config
from securebuild.daemon.core import Daemon
from securebuild.daemon.executor import Executor, Job, Outcome, PlaybookExecutor, RunInputs

__all__ = [
    "ConfigError",
    "Daemon",
    "DaemonConfig",
    "Executor",
    "Job",
    "Outcome",
    "PlaybookExecutor",
    "RunInputs",
    "load_config",
    "parse_config",
]
