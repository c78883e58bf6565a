"""Per-build log store: one append-only file per build, followed live, tailed, expired.

The store is the single place build output lands (DESIGN section 3 step 8): the runner adapter
appends each line as it is produced, and readers (``securebuild logs -f``, the HTTPS log
endpoint, the reporter computing ``logSnippet``) read or follow it. It holds no secrets because
writers mask them before appending (see ``securebuild.runner.masking``).
"""

from securebuild.logs.store import BuildLog, LogStore
from securebuild.model.logsnippet import log_snippet

__all__ = ["BuildLog", "LogStore", "log_snippet"]
