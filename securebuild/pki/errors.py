"""Errors of the PKI layer, all :class:`~securebuild.errors.SecurebuildError` subclasses."""

from __future__ import annotations

from securebuild.errors import SecurebuildError


class PKIError(SecurebuildError):
    """The project's certificate material is missing, unreadable or inconsistent."""


class InvalidName(PKIError, ValueError):
    """A project name or server host is not acceptable in a path or a certificate."""
