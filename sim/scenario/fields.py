"""What a pydantic error location means in a scenario file: the field's path and its model.

Pydantic locates an error inside a discriminated union with the tag it chose
(``inference.0.arrival.poisson.rate_per_s``) and inside a plain union with the member's
type name (``gpus.GpuChoice.choices``); neither is a key a user wrote. :func:`walk` follows
the location through the model classes, drops those tags and returns the path as written
(``inference[0].arrival.rate_per_s``) together with the model the last key belongs to, so
that an unknown key can be answered with the closest valid one (:func:`unknown_key_rule`).

Public: ``walk``, ``closest_key``, ``unknown_key_rule``.
"""
from __future__ import annotations

import difflib
import types
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

__all__ = ["walk", "closest_key", "unknown_key_rule"]


def walk(model: type[BaseModel], loc: Iterable[Any]) -> tuple[tuple[Any, ...], type[BaseModel] | None]:
    """``(path without union tags, model holding the last key)`` for a pydantic ``loc``.

    The model is None when the last key is not a model's (a list index, a dict key)."""
    path: list[Any] = []
    current: Any = model
    holder: type[BaseModel] | None = None
    for part in loc:
        current = _strip(current)
        members = _union_members(current)
        if members is not None:
            tagged = _tag_of(members, part) if isinstance(part, str) else None
            if tagged is not None:
                current = tagged
                continue  # a union tag, not a key of the document
            models = [m for m in members if _is_model(m)]
            current = models[0] if len(models) == 1 else current
        holder = current if _is_model(current) else None
        path.append(part)
        current = _child(current, part)
    return tuple(path), holder


def _tag_of(members: Sequence[Any], tag: str) -> Any:
    """The member a union tag names: a discriminator value or a type name."""
    for member in members:
        if getattr(member, "__name__", None) == tag:
            return member
        if _is_model(member):
            for field in member.model_fields.values():
                if get_origin(field.annotation) is Literal and tag in get_args(field.annotation) \
                        and field.is_required():
                    return member
    return None


def _child(annotation: Any, part: Any) -> Any:
    """The annotation of ``part`` inside ``annotation`` (None: outside the schema)."""
    if _is_model(annotation):
        field = annotation.model_fields.get(part) if isinstance(part, str) else None
        return field.annotation if field is not None else None
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (list, tuple) and args and isinstance(part, int):
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    return None


def _strip(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    members = _union_members(annotation)
    if members is not None:
        real = [m for m in members if m is not type(None)]
        if len(real) == 1:
            return _strip(real[0])
    return annotation


def _union_members(annotation: Any) -> list[Any] | None:
    if get_origin(annotation) in (Union, types.UnionType):
        return [_strip(m) for m in get_args(annotation)]
    return None


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def closest_key(key: Any, model: type[BaseModel] | None) -> str | None:
    """The valid key of ``model`` closest to a misspelt ``key`` (None if none is close)."""
    if model is None:
        return None
    close = difflib.get_close_matches(str(key), list(model.model_fields), n=1, cutoff=0.6)
    return close[0] if close else None


def unknown_key_rule(key: Any, model: type[BaseModel] | None) -> str:
    """``unknown key; did you mean 'rate_per_s'?`` or the list of valid keys."""
    if model is None:
        return "unknown key"
    close = closest_key(key, model)
    if close is not None:
        return f"unknown key; did you mean {close!r}?"
    return f"unknown key; expected one of: {', '.join(model.model_fields)}"
