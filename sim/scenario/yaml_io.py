"""Reading scenario YAML strictly and safely, remembering where every value came from.

A scenario file may come from anyone (a colleague, a web form through ``serve``), so it is
read as data, never as instructions, and within limits that no valid scenario comes near:

- at most :data:`MAX_BYTES` of UTF-8 text without control characters, one document;
- nesting at most :data:`MAX_DEPTH` levels deep and at most :data:`MAX_VALUES` values once
  aliases (``*name``) are expanded, so an alias bomb or a recursive alias is an error,
  not a hang;
- plain values follow YAML 1.2's core schema: ``true``/``false`` are the only booleans
  (``NO``, ``on`` stay strings), ``1e9`` is a number, ``0777`` is decimal; every number is
  finite (``.inf``, ``.nan``, ``1e400`` are refused) and every integer fits in 64 bits;
- tags other than the core ones (``!!str``, ``!!int``, ``!!float``, ``!!bool``, ``!!null``,
  ``!!map``, ``!!seq``) are refused, so ``!!python/...`` never constructs anything;
- duplicate keys and merge keys (``<<``) are errors.

The text is parsed into events by PyYAML (libyaml when present) and the values are built
here, without recursion, from those events. Every problem is a :class:`~sim.errors.Problem`
at ``FILE:LINE: path``. Every value's line is kept in a :class:`LineMap`.

Public: ``LineMap``, ``load_yaml_text``, ``load_yaml_file``, ``read_text_file``,
``dump_yaml``, ``format_path``, ``MAX_BYTES``, ``MAX_DEPTH``, ``MAX_VALUES``.
"""
from __future__ import annotations

import math
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sim.errors import Problem, ScenarioError

__all__ = ["LineMap", "load_yaml_text", "load_yaml_file", "read_text_file", "dump_yaml", "format_path",
           "MAX_BYTES", "MAX_DEPTH", "MAX_VALUES"]

MAX_BYTES = 1_000_000   # the largest shipped scenario is 2.4 kB
MAX_DEPTH = 32          # the deepest scenario path is 7 levels
MAX_VALUES = 100_000    # scalars and collections, counted again at every alias use
_INT_LIMIT = 2 ** 63    # integers must fit in int64 (numpy, seeds, JSON readers)

PathKey = tuple[str | int, ...]
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_./-]+$")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: fast, iterative

# YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution).
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"^[-+]?[0-9]+$|^0o[0-7]+$|^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_NON_FINITE = re.compile(r"^(?:[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")
# Characters YAML allows in a stream (tab, newlines, printable Unicode; no surrogates).
_NOT_PRINTABLE = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = {None, "!", *(_CORE + t for t in ("str", "int", "float", "bool", "null"))}
_COLLECTION_TAGS = {None, "!", _CORE + "map", _CORE + "seq"}
FINITE_RULE = "must be a finite number"


def format_path(path: Iterable[str | int]) -> str:
    """``("regions", 0, "pools")`` -> ``regions[0].pools``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not _PLAIN_KEY.match(str(part)):
            text += f"[{str(part)!r}]"  # odd keys (spaces, control characters) stay on one line
        else:
            text += f".{part}" if text else str(part)
    return text


class LineMap:
    """Maps a value's path inside the document to its 1-based line number, and the values
    an override wrote to that override (see :meth:`where`)."""

    def __init__(self, lines: dict[PathKey, int] | None = None,
                 origins: Iterable[tuple[PathKey, str]] = ()):
        self._lines = dict(lines or {})
        self._origins = list(origins)

    def with_origins(self, origins: Iterable[tuple[PathKey, str]]) -> LineMap:
        """A copy in which everything at or below each path comes from the labelled source
        (``--set path=value``), later origins winning."""
        return LineMap(self._lines, [*self._origins, *origins])

    def where(self, path: Iterable[str | int], source: str) -> tuple[str, int | None]:
        """``(file, line)`` of ``path``: an override's label (no line) or ``source``'s line."""
        key = tuple(path)
        for prefix, label in reversed(self._origins):
            if key[:len(prefix)] == prefix:
                return label, None
        return source, self.line(key)

    def set(self, path: PathKey, line: int) -> None:
        self._lines[path] = line

    def line(self, path: Iterable[str | int]) -> int | None:
        """Line of ``path`` or of its nearest ancestor that has one."""
        key = tuple(path)
        while key:
            if key in self._lines:
                return self._lines[key]
            key = key[:-1]
        return self._lines.get((), None)


class _Fatal(Exception):
    """A problem after which reading stops (a limit, a recursive or undefined alias)."""

    def __init__(self, problem: Problem):
        self.problem = problem


@dataclass
class _Anchor:
    value: Any = None
    size: int = 0       # values it stands for, aliases inside expanded
    height: int = 0     # nesting levels it adds
    open: bool = True   # still being built: an alias to it now would be recursive


@dataclass
class _Frame:
    """A mapping or sequence being built."""

    path: PathKey
    value: Any
    line: int
    anchor: str | None
    first: int          # value count when it started (for its anchor's size)
    as_key: bool        # the collection itself sits where a key should be
    height: int = 0     # levels below it so far
    key: Any = None     # mapping: the key awaiting its value (_NO_KEY: none)
    skip: bool = False  # mapping: the awaited value belongs to a rejected key


_NO_KEY = object()


def load_yaml_text(text: str, filename: str) -> tuple[Any, LineMap]:
    """Parse one YAML document; raise :class:`ScenarioError` listing what is wrong with it."""
    _check_text(text, filename)
    builder = _Builder(filename)
    try:
        builder.read(yaml.parse(text, Loader=_Loader))
    except _Fatal as exc:
        raise ScenarioError([*builder.problems, exc.problem]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        rule = f"invalid YAML: {getattr(exc, 'problem', None) or exc}"
        raise ScenarioError([Problem(filename, line, "", rule)]) from None
    if builder.problems:
        raise ScenarioError(builder.problems)
    return builder.root, builder.lines


def _check_text(text: str, filename: str) -> None:
    if len(text) > MAX_BYTES:
        raise ScenarioError([Problem(filename, None, "", f"longer than {MAX_BYTES:,} characters (the limit "
                                     "for a scenario)", f"{len(text):,} characters")])
    bad = _NOT_PRINTABLE.search(text)
    if bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        char = f"U+{ord(bad.group()):04X}"
        raise ScenarioError([Problem(filename, line, "", f"character {char} is not allowed in YAML (a control "
                                     "character or surrogate: write it as an escape inside double quotes)")])


def read_text_file(path: str | Path, limit: int = MAX_BYTES) -> str:
    """The UTF-8 text of a regular file of at most ``limit`` bytes, else a ScenarioError."""
    name = str(path)
    try:
        info = Path(path).stat()
        if stat.S_ISDIR(info.st_mode):
            raise _unreadable(name, "is a folder, not a file")
        with open(path, "rb") as handle:  # a device or pipe is read up to the limit too
            data = handle.read(limit + 1)
    except OSError as exc:
        raise _unreadable(name, f"cannot read file: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise _unreadable(name, f"file is larger than {limit:,} bytes (the limit for a scenario)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ScenarioError([Problem(name, line, "", f"not UTF-8 text (byte 0x{data[exc.start]:02x})")]) from None


def _unreadable(name: str, rule: str) -> ScenarioError:
    return ScenarioError([Problem(name, None, "", rule)])


def load_yaml_file(path: str | Path) -> tuple[Any, LineMap, str]:
    """Read ``path`` and return (data, line map, verbatim text)."""
    text = read_text_file(path)
    data, lines = load_yaml_text(text, str(path))
    return data, lines, text


class _Builder:
    """Builds plain data from parser events with an explicit stack (no recursion)."""

    def __init__(self, filename: str):
        self.filename = filename
        self.root: Any = None
        self.lines = LineMap()
        self.problems: list[Problem] = []
        self.stack: list[_Frame] = []
        self.anchors: dict[str, _Anchor] = {}
        self.values = 0
        self.documents = 0

    def read(self, events: Iterable[yaml.Event]) -> None:
        for event in events:
            line = event.start_mark.line + 1 if event.start_mark is not None else 0
            if isinstance(event, yaml.DocumentStartEvent):
                self.documents += 1
                if self.documents > 1:
                    raise self._fatal(line, (), "a scenario file holds one YAML document; a second starts here")
            elif isinstance(event, yaml.ScalarEvent):
                self._scalar(event, line)
            elif isinstance(event, yaml.AliasEvent):
                self._alias(event, line)
            elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                self._open(event, line)
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                self._close()

    # -- events ---------------------------------------------------------------------------
    def _scalar(self, event: yaml.ScalarEvent, line: int) -> None:
        self._count(1, line)
        if self._key_expected():
            self._key(event, line)
            return
        value = self._resolve(event, line)
        self._anchor_scalar(event.anchor, value)
        self._add(value, line, 0)

    def _alias(self, event: yaml.AliasEvent, line: int) -> None:
        name = event.anchor or ""
        anchor = self.anchors.get(name)
        if self._key_expected():
            raise self._fatal(line, self._here(), f"alias *{name} cannot be a key")
        if anchor is None:
            raise self._fatal(line, self._child_path(), f"alias *{name} names no anchor (&{name}) defined before it")
        if anchor.open:
            raise self._fatal(line, self._child_path(),
                              f"alias *{name} is recursive: it refers to a value that contains it")
        self._count(anchor.size, line)
        self._depth(anchor.height, line)
        self._add(anchor.value, line, anchor.height)

    def _open(self, event: yaml.CollectionStartEvent, line: int) -> None:
        as_key = self._key_expected()
        path = self._here() if as_key else self._child_path()
        self._count(1, line)
        self._depth(1, line)
        if event.tag not in _COLLECTION_TAGS:
            self.problems.append(self._problem(line, path, _tag_rule(event.tag)))
        value: Any = {} if isinstance(event, yaml.MappingStartEvent) else []
        if event.anchor is not None:
            self.anchors[event.anchor] = _Anchor()
        self.stack.append(_Frame(path, value, line, event.anchor, self.values, as_key, key=_NO_KEY))

    def _close(self) -> None:
        frame = self.stack.pop()
        if frame.anchor is not None:
            self.anchors[frame.anchor] = _Anchor(frame.value, self.values - frame.first + 1, frame.height + 1, False)
        if frame.as_key:
            self.problems.append(self._problem(frame.line, frame.path, "a key must be a plain value, "
                                               "not a list or mapping"))
            self._reject_key()
            return
        self._add(frame.value, frame.line, frame.height + 1)

    # -- building ---------------------------------------------------------------------------
    def _key_expected(self) -> bool:
        return bool(self.stack) and isinstance(self.stack[-1].value, dict) and self.stack[-1].key is _NO_KEY

    def _key(self, event: yaml.ScalarEvent, line: int) -> None:
        frame = self.stack[-1]
        key = event.value
        path = frame.path + (key,)
        if event.tag not in _SCALAR_TAGS:
            self.problems.append(self._problem(line, frame.path, _tag_rule(event.tag) + " on a key"))
        elif key == "<<" and event.implicit[0]:
            self.problems.append(self._problem(line, frame.path, "YAML merge keys (<<) are not supported"))
        elif key in frame.value:
            first = self.lines.line(path)
            self.problems.append(self._problem(line, path, f"duplicate key (first defined on line {first})"))
        else:
            frame.key = key
            return
        self._reject_key()

    def _reject_key(self) -> None:
        frame = self.stack[-1]
        frame.key, frame.skip = None, True

    def _child_path(self) -> PathKey:
        if not self.stack:
            return ()
        frame = self.stack[-1]
        if isinstance(frame.value, list):
            return frame.path + (len(frame.value),)
        return frame.path + (frame.key,)

    def _here(self) -> PathKey:
        return self.stack[-1].path if self.stack else ()

    def _add(self, value: Any, line: int, height: int) -> None:
        """Put a finished value in its parent (or make it the document)."""
        if not self.stack:
            self.root = value
            self.lines.set((), line)
            return
        frame = self.stack[-1]
        frame.height = max(frame.height, height)
        if isinstance(frame.value, list):
            self.lines.set(frame.path + (len(frame.value),), line)
            frame.value.append(value)
            return
        key, skip = frame.key, frame.skip
        frame.key, frame.skip = _NO_KEY, False
        if skip:
            return
        self.lines.set(frame.path + (key,), line)
        frame.value[key] = value

    def _anchor_scalar(self, name: str | None, value: Any) -> None:
        if name is not None:
            self.anchors[name] = _Anchor(value, 1, 0, False)

    # -- scalars ------------------------------------------------------------------------------
    def _resolve(self, event: yaml.ScalarEvent, line: int) -> Any:
        """The value of a scalar under YAML 1.2's core schema (None after a problem)."""
        text, tag = event.value, event.tag
        path = self._child_path()
        if tag not in _SCALAR_TAGS:
            self.problems.append(self._problem(line, path, _tag_rule(tag)))
            return None
        if tag in (None, "!"):
            if tag == "!" or not event.implicit[0]:  # quoted, or a plain scalar marked as a string
                return text
            tag = _implicit_tag(text)
        rule, value = _construct(tag, text)
        if rule:
            self.problems.append(self._problem(line, path, rule, text))
            return None
        return value

    # -- limits --------------------------------------------------------------------------------
    def _count(self, size: int, line: int) -> None:
        self.values += size
        if self.values > MAX_VALUES:
            raise self._fatal(line, self._here(), f"more than {MAX_VALUES:,} values once aliases are expanded")

    def _depth(self, added: int, line: int) -> None:
        if len(self.stack) + added > MAX_DEPTH:
            outer = self.stack[1].path if len(self.stack) > 1 else ()  # the full path would be as deep
            raise self._fatal(line, outer, f"nested more than {MAX_DEPTH} levels deep")

    def _problem(self, line: int, path: PathKey, rule: str, *value: Any) -> Problem:
        return Problem(self.filename, line, format_path(path), rule, *value)

    def _fatal(self, line: int, path: PathKey, rule: str) -> _Fatal:
        return _Fatal(self._problem(line, path, rule))


def _tag_rule(tag: str | None) -> str:
    shown = "!!" + tag.removeprefix(_CORE) if tag and tag.startswith(_CORE) else tag
    return f"unsupported YAML tag {shown} (plain values, lists and mappings only)"


def _implicit_tag(text: str) -> str:
    if _NULL.match(text):
        return _CORE + "null"
    if text in _BOOL:
        return _CORE + "bool"
    if _INT.match(text):
        return _CORE + "int"
    if _FLOAT.match(text) or _NON_FINITE.match(text):
        return _CORE + "float"
    return _CORE + "str"


def _construct(tag: str, text: str) -> tuple[str, Any]:
    """``(problem, value)`` of ``text`` read as ``tag``; the problem is empty when it reads."""
    kind = tag.removeprefix(_CORE)
    if kind == "str":
        return "", text
    if kind == "null":
        return ("", None) if _NULL.match(text) else ("!!null must be empty, ~ or null", None)
    if kind == "bool":
        return ("", _BOOL[text]) if text in _BOOL else ("!!bool must be true or false", None)
    if kind == "int":
        return _integer(text)
    return _float(text)


def _integer(text: str) -> tuple[str, Any]:
    if not _INT.match(text):
        return "!!int must be an integer", None
    if len(text) > 24:  # int() of a long digit string is slow, and it is out of range anyway
        return "integer out of range (must fit in 64 bits)", None
    value = int(text[2:], 8 if text[1] == "o" else 16) if text[:2] in ("0o", "0x") else int(text)
    if not -_INT_LIMIT <= value < _INT_LIMIT:
        return "integer out of range (must fit in 64 bits)", None
    return "", value


def _float(text: str) -> tuple[str, Any]:
    if _INT.match(text) and not text.startswith(("0o", "0x")):
        text = text + ".0"  # an explicit !!float 3
    if not _FLOAT.match(text):
        return FINITE_RULE if _NON_FINITE.match(text) else "!!float must be a number", None
    value = float(text)
    return ("", value) if math.isfinite(value) else (FINITE_RULE, None)


def dump_yaml(data: Any) -> str:
    """Serialise plain data to YAML with keys in insertion order (deterministic)."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)
