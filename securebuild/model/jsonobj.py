"""Typed, immutable objects read from and written back to Kubernetes-style JSON.

Every API type of :mod:`securebuild.model.types` is a frozen dataclass deriving from
:class:`JsonObject`. One generic converter, driven by the type hints, reads a decoded YAML/JSON
document into them and writes them back, so adding a field is one line and the round trip
``to_json(from_json(d)) == d`` holds by construction:

* a field's JSON key is its name in camelCase (``context_dir`` -> ``contextDir``, a trailing
  ``_`` dropped: ``from_`` -> ``from``), or ``field(metadata={"json": ...})`` where Go's spelling
  differs (``mountTrustedCA``);
* absent keys and ``null`` become the field's default; ``None``, empty lists and empty maps are
  omitted when writing (Go's ``omitempty``), nested objects that were absent stay absent;
* keys the model does not know are kept verbatim in ``extra`` and written back, so an object read
  from a newer cluster is not silently truncated;
* a value of the wrong type is a :class:`~securebuild.model.problems.Problem` naming the field,
  never an exception from deep inside the converter.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from securebuild.model.problems import ModelError, Problem, join_path

T = TypeVar("T", bound="JsonObject")

EMPTY_MAP: Mapping[str, Any] = types.MappingProxyType({})


def empty_map() -> Any:
    """A dataclass field defaulting to the shared empty read-only mapping."""
    return dataclasses.field(default_factory=lambda: EMPTY_MAP)


@dataclasses.dataclass(frozen=True, kw_only=True)
class JsonObject:
    """Base of all API types: unknown keys and which nested objects were absent."""

    extra: Mapping[str, Any] = dataclasses.field(default_factory=lambda: EMPTY_MAP, repr=False)
    omitted: frozenset[str] = dataclasses.field(default=frozenset(), repr=False, compare=False)

    @classmethod
    def from_json(cls: type[T], data: object, path: str = "") -> T:
        """Read ``data``; raise :class:`ModelError` listing every field of the wrong type."""
        problems: list[Problem] = []
        obj = parse_object(cls, data, path, problems)
        if problems:
            raise ModelError(problems)
        return obj

    def to_json(self) -> dict[str, Any]:
        """Write back as plain dicts/lists/scalars, ready for ``json.dumps`` or YAML."""
        return dump_object(self)


def freeze(value: Any) -> Any:
    """Deep-freeze decoded JSON: dicts become read-only mappings, lists become tuples."""
    if isinstance(value, Mapping):
        return types.MappingProxyType({str(k): freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Inverse of :func:`freeze`: plain dicts and lists again."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


def json_key(f: dataclasses.Field[Any]) -> str:
    """The JSON key of a dataclass field (see the module docstring)."""
    explicit = f.metadata.get("json")
    if explicit:
        return str(explicit)
    head, *rest = f.name.rstrip("_").split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


_FIELDS_CACHE: dict[type, tuple[tuple[dataclasses.Field[Any], str, Any], ...]] = {}


def _fields(cls: type[JsonObject]) -> tuple[tuple[dataclasses.Field[Any], str, Any], ...]:
    cached = _FIELDS_CACHE.get(cls)
    if cached is not None:
        return cached
    hints = typing.get_type_hints(cls)
    result = tuple(
        (f, json_key(f), hints[f.name])
        for f in dataclasses.fields(cls)
        if f.name not in ("extra", "omitted")
    )
    _FIELDS_CACHE[cls] = result
    return result


def _is_json_object(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, JsonObject)


def _is_optional(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    is_union = origin is typing.Union or origin is types.UnionType
    return is_union and type(None) in typing.get_args(tp)


def parse_object(cls: type[T], data: object, path: str, problems: list[Problem]) -> T:
    """Read one object; wrong types are appended to ``problems`` and the default is used."""
    if not isinstance(data, Mapping):
        problems.append(Problem(path or "(document)", "must be an object (a mapping of keys)"))
        return cls()
    kwargs: dict[str, Any] = {}
    known: set[str] = set()
    omitted: set[str] = set()
    for f, key, tp in _fields(cls):
        known.add(key)
        value = data.get(key)
        if value is None:
            if _is_json_object(tp):
                omitted.add(key)
            elif _is_optional(tp):
                kwargs[f.name] = None  # absent stays absent, whatever the default
            continue
        kwargs[f.name] = _parse_value(tp, value, join_path(path, key), problems)
    extra = {str(k): freeze(v) for k, v in data.items() if k not in known}
    if extra:
        kwargs["extra"] = types.MappingProxyType(extra)
    return cls(**kwargs, omitted=frozenset(omitted))


_TYPE_WORDS = {str: "a string", bool: "true or false", int: "an integer"}


def _parse_value(tp: Any, value: object, path: str, problems: list[Problem]) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return freeze(value)
    if origin is typing.Union or origin is types.UnionType:
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _parse_value(inner[0], value, path, problems)
    if tp in _TYPE_WORDS:
        ok = isinstance(value, tp) and not (tp is int and isinstance(value, bool))
        if not ok:
            problems.append(Problem(path, f"must be {_TYPE_WORDS[tp]}, not {_describe(value)}"))
            return None
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            problems.append(Problem(path, f"must be a list, not {_describe(value)}"))
            return ()
        (item_tp, _ellipsis) = typing.get_args(tp)
        items = [
            _parse_value(item_tp, item, join_path(path, i), problems)
            for i, item in enumerate(value)
        ]
        return tuple(item for item in items if item is not None)
    if origin is Mapping:
        if not isinstance(value, Mapping):
            problems.append(Problem(path, f"must be a mapping, not {_describe(value)}"))
            return EMPTY_MAP
        _key_tp, value_tp = typing.get_args(tp)
        parsed = {}
        for k, v in value.items():
            if not isinstance(k, str):
                problems.append(Problem(path, f"keys must be strings, not {_describe(k)}"))
                continue
            item = _parse_value(value_tp, v, join_path(path, k), problems)
            if item is not None:
                parsed[k] = item
        return types.MappingProxyType(parsed)
    if _is_json_object(tp):
        return parse_object(tp, value, path, problems)
    raise TypeError(f"unsupported field type {tp!r} at {path}")  # a bug in the model


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__


def dump_object(obj: JsonObject) -> dict[str, Any]:
    """Write one object (see the module docstring for what is omitted)."""
    out: dict[str, Any] = {}
    for f, key, tp in _fields(type(obj)):
        value = getattr(obj, f.name)
        if value is None:
            continue
        if isinstance(value, tuple | Mapping) and not value and not _is_optional(tp):
            continue  # omitempty; an optional empty mapping ({} versus absent) is kept
        if isinstance(value, JsonObject):
            if key in obj.omitted and value == type(value)():
                continue
            out[key] = dump_object(value)
        elif _is_json_object(_item_type(tp)) and isinstance(value, tuple):
            out[key] = [dump_object(v) for v in value]
        else:
            out[key] = thaw(value)
    for key, value in obj.extra.items():
        out.setdefault(key, thaw(value))
    return out


def _item_type(tp: Any) -> Any:
    if typing.get_origin(tp) is tuple:
        return typing.get_args(tp)[0]
    return None
