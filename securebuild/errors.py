"""The exception every layer raises when it has something to tell the user.

Only :class:`SecurebuildError` and its subclasses are turned into one clean line by the CLI;
anything else is a bug and is reported as an internal error (with a traceback under
``--debug``). Keeping a single root lets each layer add context ("while fetching the source of
build ns/name: ...") without the CLI knowing every subsystem.
"""


class SecurebuildError(Exception):
    """An error with a message meant for the person running securebuild."""


class ConfigError(SecurebuildError):
    """A configuration file or command-line value is unusable; the message names the key."""
