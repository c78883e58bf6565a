"""Typed view of OpenShift Builds and BuildConfigs, their validation and status semantics.

Pure Python, no network: everything the rest of securebuild needs to read a Build exactly as
OpenShift does (:mod:`.types`, :mod:`.parse`), decide whether it may run (:mod:`.validation`),
derive a Build from a BuildConfig (:mod:`.generate`) and report back with OpenShift's exact
strings (:mod:`.status`, :mod:`.events`, :mod:`.logsnippet`).
"""

from securebuild.model.parse import load_document, load_file, load_object, object_from_dict
from securebuild.model.problems import ModelError, Problem
from securebuild.model.types import Build, BuildConfig
from securebuild.model.validation import validate

__all__ = [
    "Build",
    "BuildConfig",
    "ModelError",
    "Problem",
    "load_document",
    "load_file",
    "load_object",
    "object_from_dict",
    "validate",
]
