"""Syntax of names: Kubernetes object names, labels, env vars, git refs and URIs.

Each check returns ``None`` when the value is fine, else a plain sentence (without the field
name, which the caller knows). The rules are Kubernetes' (``IsDNS1123Subdomain``,
``IsQualifiedName``, ``IsEnvVarName``...) and git's ``check-ref-format``; on top of them, nothing
that securebuild hands to a program as an argument may start with ``-``, so no tenant value can be
read as an option.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED_NAME_PART = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_ENV_VAR_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
#: C0 and C1 controls, Unicode line separators and lone surrogates: never part of a path or ref.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_HEX_COMMIT = re.compile(r"[0-9a-fA-F]{4,64}")
_SCP_LIKE = re.compile(r"(?P<user>[^@/\s]+)@(?P<host>[^:/\s]+):(?P<path>.+)")
_HOST = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?")

GIT_URI_SCHEMES = ("https", "http", "ssh")


def dns1123_label(value: str) -> str | None:
    if len(value) > 63:
        return "must be at most 63 characters"
    if not _DNS1123_LABEL.fullmatch(value):
        return (
            "must consist of lower case letters, digits and '-', and start and end with a "
            "letter or digit (a DNS-1123 label)"
        )
    return None


def dns1123_subdomain(value: str) -> str | None:
    if len(value) > 253:
        return "must be at most 253 characters"
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        return (
            "must consist of lower case letters, digits, '-' and '.', and start and end with a "
            "letter or digit (a DNS-1123 subdomain)"
        )
    return None


def qualified_name(value: str) -> str | None:
    """A label or annotation key: ``[prefix/]name``, prefix a DNS subdomain, name <= 63."""
    prefix, slash, name = value.rpartition("/")
    if slash and (not prefix or dns1123_subdomain(prefix) is not None):
        return "must have a DNS-1123 subdomain before the '/' (e.g. 'example.com/name')"
    if not name or len(name) > 63 or not _QUALIFIED_NAME_PART.fullmatch(name):
        return (
            "must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a "
            "letter or digit, optionally prefixed by a DNS subdomain and '/'"
        )
    return None


def label_value(value: str) -> str | None:
    if len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
        return (
            "must be empty or at most 63 letters, digits, '-', '_' or '.', starting and ending "
            "with a letter or digit"
        )
    return None


def env_var_name(value: str) -> str | None:
    if not _ENV_VAR_NAME.fullmatch(value):
        return "must consist of letters, digits, '_', '-' and '.', and must not start with a digit"
    return None


def has_control_characters(value: str) -> bool:
    return bool(_CONTROL.search(value))


def git_ref(value: str) -> str | None:
    """A branch, tag, ``refs/...`` name or commit, by ``git check-ref-format`` rules."""
    if not value:
        return "must not be empty"
    if value.startswith("-"):
        return "must not start with '-' (it would be read as an option)"
    if has_control_characters(value) or any(c in value for c in " ~^:?*[\\"):
        return "must not contain spaces, control characters or any of ~ ^ : ? * [ \\"
    if ".." in value or "@{" in value or "//" in value or value == "@":
        return "must not contain '..', '@{' or '//'"
    if value.startswith("/") or value.endswith(("/", ".", ".lock")):
        return "must not start with '/' or end with '/', '.' or '.lock'"
    if any(part.startswith(".") or part.endswith(".lock") for part in value.split("/")):
        return "must not have a path component starting with '.' or ending with '.lock'"
    return None


def git_commit(value: str) -> str | None:
    if not _HEX_COMMIT.fullmatch(value):
        return "must be a commit id: 4 to 64 hexadecimal digits"
    return None


def git_uri(value: str) -> str | None:
    """``https``, ``http``, ``ssh`` URLs or scp-like ``user@host:path``; nothing else."""
    if not value:
        return "must not be empty"
    if value.startswith("-"):
        return "must not start with '-' (it would be read as an option)"
    if has_control_characters(value) or any(c.isspace() for c in value):
        return "must not contain spaces or control characters"
    if "::" in value.split("/", 1)[0]:
        return "must not use a git remote helper ('<transport>::<address>')"
    if "://" in value:
        try:
            parts = urllib.parse.urlsplit(value)
            host = parts.hostname or ""
            parts.port  # noqa: B018 - raises ValueError for a malformed port
        except ValueError as exc:
            return f"is not a valid URL: {exc}"
        scheme = parts.scheme.lower()
        if scheme not in GIT_URI_SCHEMES:
            return (
                f"uses scheme {scheme!r}; only https, http, ssh and scp-like "
                "'user@host:path' are allowed"
            )
        if not _valid_host(host):
            return "must name a valid host"
        if (parts.username or "").startswith("-"):
            return "must not have a user name starting with '-'"
        if not parts.path.strip("/"):
            return "must name a repository path"
        return None
    match = _SCP_LIKE.fullmatch(value)
    if not match:
        return (
            "must be an https, http or ssh URL, or scp-like 'user@host:path' "
            "(local paths and file: URLs are not allowed)"
        )
    if match["user"].startswith("-") or not _valid_host(match["host"]):
        return "must name a valid user and host"
    if match["path"].startswith("-"):
        return "must not have a path starting with '-'"
    return None


def _valid_host(host: str) -> bool:
    if _HOST.fullmatch(host):
        return True
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


def plain_file_name(value: str) -> str | None:
    """``binary.asFile``: one file name, no directories, not an option."""
    if value in ("", ".", ".."):
        return "must be a file name, not empty, '.' or '..'"
    if "/" in value or "\\" in value:
        return "must be a plain file name without '/' or '\\'"
    if has_control_characters(value):
        return "must not contain control characters"
    if value.startswith("-"):
        return "must not start with '-' (it would be read as an option)"
    if len(value.encode("utf-8")) > 255:
        return "must be at most 255 bytes"
    return None


def relative_path(value: str) -> str | None:
    """contextDir, dockerfilePath, destinationDir: relative, inside the tree, no ``..``."""
    if has_control_characters(value):
        return "must not contain control characters"
    if value.startswith("/"):
        return "must be a relative path, not an absolute one"
    if any(part == ".." for part in value.split("/")):
        return "must not contain '..' (it must stay inside the source tree)"
    if value.startswith("-"):
        return "must not start with '-' (it would be read as an option)"
    if "\\" in value:
        return "must use '/' as separator, not '\\'"
    return None


def absolute_path(value: str) -> str | None:
    if has_control_characters(value):
        return "must not contain control characters"
    if not value.startswith("/"):
        return "must be an absolute path"
    if any(part == ".." for part in value.split("/")):
        return "must not contain '..'"
    return None
