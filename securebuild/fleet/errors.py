"""The one error the fleet layer raises: a VM or build host could not be reached or changed."""

from __future__ import annotations

from securebuild.errors import SecurebuildError


class FleetError(SecurebuildError):
    """A VM lifecycle step failed; the message names the project, host and failed tasks."""
