"""Load spec files with ruamel.yaml, keeping a line/column for every node.

Each YAML document becomes a :class:`SourceDoc`: plain Python data (dicts, lists,
scalars) plus a map from JSON path (a tuple of keys and indexes) to the position of
the key and of the value, so that any later stage can point at ``file:line:col``.
Problems in the file itself (syntax, tabs, duplicate keys, empty file, a root that is
not a mapping) become diagnostics, never exceptions.
"""

from __future__ import annotations

import datetime as _dt
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..diagnostics import Diagnostic, Severity
from ..fsio import MAX_SPEC_BYTES, read_bounded
from . import problems

Path_ = tuple[str | int, ...]

SPEC_SUFFIXES = (".yaml", ".yml")


@dataclass
class Position:
    """1-based positions of a mapping key (or sequence item) and of its value."""

    key_line: int
    key_col: int
    value_line: int
    value_col: int


@dataclass
class SourceDoc:
    """One YAML document of a spec file, as plain data with positions."""

    file: str
    index: int
    data: Any
    positions: dict[Path_, Position] = field(default_factory=dict)
    start_line: int = 1
    text: str = ""
    base_dir: Path = field(default_factory=Path)

    def locate(self, path: Sequence[str | int], *, key: bool = False) -> tuple[int, int]:
        """Best position for ``path``: the value (or the key), else the nearest parent."""
        p = tuple(path)
        while p:
            pos = self.positions.get(p)
            if pos is not None:
                return (pos.key_line, pos.key_col) if key else (pos.value_line, pos.value_col)
            p = p[:-1]
        return (self.start_line, 1)

    def has(self, path: Sequence[str | int]) -> bool:
        """True when the user wrote ``path`` in this document."""
        return tuple(path) in self.positions

    def get(self, path: Sequence[str | int], default: Any = None) -> Any:
        node = self.data
        for part in path:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                return default
        return node


def _diag(file: str, line: int, col: int, rule: str, message: str, hint: str | None) -> Diagnostic:
    return Diagnostic(Severity.ERROR, rule, message, hint, file, line, col, "")


def _key_position(node: Any, key: Any) -> tuple[int, int, int, int]:
    """0-based (key line, key col, value line, value col) of ``key`` in a round-trip mapping.

    A key that came in through a merge key (``<<: *anchor``) has no position in the
    mapping itself; it is found in the anchored mapping it was merged from, else the
    mapping's own start is used.
    """
    pos = (node.lc.data or {}).get(key)
    if pos is not None:
        return tuple(pos)  # type: ignore[return-value]
    from ruamel.yaml.comments import merge_attrib

    for item in getattr(node, merge_attrib, None) or ():
        source = item[1] if isinstance(item, tuple) else item  # ruamel <0.19: (index, map)
        lc = getattr(source, "lc", None)
        if lc is not None and key in lc.data:
            return tuple(lc.data[key])  # type: ignore[return-value]
        if hasattr(source, "lc") and key in source:
            return _key_position(source, key)
    line, col = node.lc.line or 0, node.lc.col or 0
    return line, col, line, col


def _item_position(node: Any, index: int) -> tuple[int, int]:
    """0-based (line, col) of item ``index`` of a round-trip sequence.

    A sequence with an explicit tag (``!!python/tuple [..]``) records no item positions;
    the sequence's own start stands in for them.
    """
    data = node.lc.data
    pos = data.get(index) if isinstance(data, dict) else None
    if pos is not None:
        return pos[0], pos[1]
    return node.lc.line or 0, node.lc.col or 0


# A spec has a few hundred nodes. Aliases are expanded into plain data, so a small file
# with nested aliases ("billion laughs") could expand without bound: stop well before.
MAX_NODES = 100_000


class _TooManyNodes(Exception):
    pass


class _LoneSurrogate(Exception):
    """A string holds a ``\\ud800``-style escape that is half of a character (no UTF-8 for it)."""

    def __init__(self, path: Path_) -> None:
        super().__init__(path)
        self.path = path


def _text(value: str, path: Path_) -> str:
    """``value`` as a string UTF-8 can hold: escaped surrogate pairs (``"\\ud83e\\udd99"``, as
    JSON writes non-BMP characters) are joined into their character; a lone half is refused."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        pass
    try:
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    except UnicodeDecodeError:
        raise _LoneSurrogate(path) from None


def _plain(node: Any, path: Path_, positions: dict[Path_, Position]) -> Any:
    """Convert ruamel round-trip nodes to plain data, recording positions."""
    if len(positions) > MAX_NODES:
        raise _TooManyNodes
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for key in node:
            kl, kc, vl, vc = _key_position(node, key)
            if node[key] is None and vl != kl:
                # `key:` with nothing after it: ruamel reports the next token; the key is the place.
                vl, vc = kl, kc
            skey = _text(key if isinstance(key, str) else str(key), path)
            child = (*path, skey)
            positions[child] = Position(kl + 1, kc + 1, vl + 1, vc + 1)
            out[skey] = _plain(node[key], child, positions)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for i, item in enumerate(node):
            line, col = _item_position(node, i)
            child = (*path, i)
            positions[child] = Position(line + 1, col + 1, line + 1, col + 1)
            items.append(_plain(item, child, positions))
        return items
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return _text(str(node), path)
    if isinstance(node, (_dt.date, _dt.datetime)):
        return node.isoformat()
    return str(node)


def _tab_problem(text: str) -> tuple[int, int] | None:
    """Position of the first tab used for indentation (YAML forbids it)."""
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.lstrip(" ")
        if stripped.startswith("\t"):
            return lineno, len(line) - len(stripped) + 1
    return None


def _offset_position(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, col) of a character offset into ``text``."""
    offset = max(0, min(offset, len(text)))
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _yaml_error(file: str, exc: Exception, text: str) -> Diagnostic:
    from ruamel.yaml.constructor import DuplicateKeyError
    from ruamel.yaml.reader import ReaderError

    if isinstance(exc, ReaderError):
        # A control character or invalid code point: the reader knows only the offset.
        line, col = _offset_position(text, int(getattr(exc, "position", 0) or 0))
        return _diag(file, line, col, problems.YAML_UNREADABLE,
                     f"character {exc.character!r} is not allowed in YAML ({exc.reason})"
                     if isinstance(exc.character, str) else
                     f"character #x{int(exc.character):04x} is not allowed in YAML ({exc.reason})",
                     "remove it, or write it as an escape inside a double-quoted string")
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    if isinstance(exc, DuplicateKeyError):
        # ruamel says 'found duplicate key "k" with value "v" (original value: "w")'.
        problem = (getattr(exc, "problem", "") or "").strip().removeprefix("found ")
        return _diag(
            file, line, col, problems.DUPLICATE_KEY,
            problem if problem.startswith("duplicate key") else f"duplicate key: {problem}",
            "each key may appear once in a mapping; remove or merge the repeated one",
        )
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    if context:
        # Where the unfinished construct began is usually where the mistake is.
        cmark = getattr(exc, "context_mark", None)
        if cmark is not None and (cmark.line, cmark.column) != (line - 1, col - 1):
            context += f" that starts at line {cmark.line + 1}, column {cmark.column + 1}"
    msg = f"YAML syntax error: {problem}" + (f" ({context})" if context else "")
    return _diag(file, line, col, problems.YAML_UNREADABLE, msg, "fix the YAML syntax at this position")


_ROOT_KINDS = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}


def _document_start(yaml: Any, text: str, index: int, default: int) -> int:
    """1-based line where document ``index`` has its first node (only used on the error path)."""
    try:
        for i, node in enumerate(yaml.compose_all(text)):
            if i == index:
                return int(node.start_mark.line) + 1
    except Exception:  # noqa: BLE001 - best effort: the document already parsed once
        return default
    return default


def load_text(text: str, file: str, base_dir: Path | None = None) -> tuple[list[SourceDoc], list[Diagnostic]]:
    """Parse ``text`` (one or more YAML documents) into :class:`SourceDoc` objects."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    base = base_dir if base_dir is not None else Path(".")
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    docs: list[SourceDoc] = []
    diags: list[Diagnostic] = []
    try:
        raw_docs = list(yaml.load_all(text))
    except (MarkedYAMLError, YAMLError) as exc:
        # A tab in the indentation is the usual cause; say so rather than quote the scanner.
        tab = _tab_problem(text)
        if tab is not None:
            return [], [_diag(file, tab[0], tab[1], problems.TAB_INDENT, "tab character used for indentation",
                              "YAML indents with spaces only; replace the tabs with spaces")]
        return [], [_yaml_error(file, exc, text)]
    except (ValueError, TypeError, RecursionError) as exc:  # ruamel raises these on odd input
        return [], [_diag(file, 1, 1, problems.YAML_UNREADABLE, f"YAML could not be read: {exc}",
                          "check the file is a YAML document")]
    non_empty = [d for d in raw_docs if d is not None]
    if not non_empty:
        return [], [_diag(file, 1, 1, problems.NO_SPEC, "the file holds no spec (it is empty)",
                          "write an LLMService spec, e.g. with `llmdeploy init`")]
    for index, raw in enumerate(raw_docs):
        if raw is None:
            continue
        start = 1
        lc = getattr(raw, "lc", None)
        if lc is not None and lc.line is None:  # a tagged scalar root (`!x 0`) has no line of its own
            lc = None
        if lc is not None:
            start = lc.line + 1
        positions: dict[Path_, Position] = {}
        try:
            data = _plain(raw, (), positions)
        except RecursionError:
            diags.append(_diag(file, start, 1, problems.YAML_UNREADABLE, "the document nests too deeply",
                               "a spec is a few levels deep; check for recursive anchors"))
            continue
        except _LoneSurrogate as exc:
            where = positions.get(exc.path)
            line, col = (where.value_line, where.value_col) if where is not None else (start, 1)
            diags.append(_diag(file, line, col, problems.YAML_UNREADABLE,
                               "the string holds half of a character (a lone \\ud800-\\udfff escape)",
                               "write the character itself, or both halves of its surrogate pair"))
            continue
        except _TooManyNodes:
            diags.append(_diag(file, start, 1, problems.YAML_UNREADABLE,
                               f"the document expands to more than {MAX_NODES:,} values (nested aliases?)",
                               "a spec is a few hundred values; expand fewer anchors"))
            continue
        if not isinstance(data, dict):
            if lc is None:  # a scalar root has no position of its own
                start = _document_start(yaml, text, index, start)
            kind = _ROOT_KINDS.get(type(data), "a scalar")
            diags.append(_diag(file, start, 1, problems.NO_SPEC,
                               f"the document root is {kind}, not a mapping",
                               "a spec starts with `apiVersion: llmdeploy.dev/v1alpha1` and `kind: LLMService`"))
            continue
        docs.append(SourceDoc(file, index, data, positions, start, text, base))
    return docs, diags


def load_text_cached(text: str, file: str, base_dir: Path) -> tuple[list[SourceDoc], list[Diagnostic]]:
    """:func:`load_text` for files read on every run (profiles), cached by content hash.

    A clean parse (no diagnostics) is stored as JSON in the user cache, data and
    positions both, so the next run skips ruamel.yaml for that file (~3 ms). Only data
    that survives JSON unchanged is cached (not NaN, say); anything else, a parse
    with diagnostics included, is parsed every time.
    """
    import hashlib
    import json

    from ..fsio import (  # bump CACHE_VERSION when SourceDoc or the position rules change
        CACHE_VERSION,
        cache_dir,
        load_cache,
        store_cache,
    )

    full = hashlib.sha256(text.encode("utf-8")).hexdigest()
    digest = full[:32]
    cached = cache_dir() / "docs" / f"{digest}-v{CACHE_VERSION}.json"
    entry = load_cache(cached, full)  # verified against the text's and its own hash
    if entry is not None:
        try:
            stored = json.loads(entry)
            return [SourceDoc(file, d["index"], d["data"], {tuple(p[0]): Position(*p[1:]) for p in d["positions"]},
                              d["start_line"], text, base_dir) for d in stored], []
        except (ValueError, KeyError, TypeError, IndexError):
            pass
    docs, diags = load_text(text, file, base_dir)
    if diags:
        return docs, diags
    stored = [{"index": d.index, "data": d.data, "start_line": d.start_line,
               "positions": [[list(k), v.key_line, v.key_col, v.value_line, v.value_col]
                             for k, v in d.positions.items()]} for d in docs]
    try:
        encoded = json.dumps(stored, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return docs, diags  # data JSON cannot hold: not cached
    if [d["data"] for d in json.loads(encoded)] == [d.data for d in docs]:  # else JSON would change it
        store_cache(cached, encoded, full)
    return docs, diags


def _expand(paths: Iterable[str]) -> Iterator[tuple[str, Path | None, bool]]:
    """(display name, path or None for stdin, found by walking a folder)."""
    for p in paths:
        if p == "-":
            yield "-", None, False
            continue
        path = Path(p)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                # A FIFO or device named *.yaml in a folder is skipped like any non-file.
                if child.is_file() and child.suffix in SPEC_SUFFIXES:
                    yield str(child), child, True
        else:
            yield p, path, False


def is_foreign_document(data: Any) -> bool:
    """True for another tool's YAML (a Kubernetes manifest, a kustomization): it names an
    ``apiVersion`` and a ``kind`` outside llmdeploy's. A document that names neither, or
    llmdeploy's own group or kinds, is a spec (and gets the spec's diagnostics)."""
    if not isinstance(data, dict):
        return False
    api, kind = data.get("apiVersion"), data.get("kind")
    if not isinstance(api, str) or not isinstance(kind, str):
        return False
    return not api.startswith("llmdeploy.dev/") and kind not in ("LLMService", "LLMServiceProfile")


def load_paths(paths: Sequence[str]) -> tuple[list[SourceDoc], list[Diagnostic]]:
    """Load files, folders (``*.yaml``/``*.yml`` inside, recursively) or ``-`` (stdin).

    Inside a folder, documents of other tools (an ``apiVersion``/``kind`` outside
    llmdeploy's, e.g. rendered manifests or a kustomization) are skipped.
    """
    docs: list[SourceDoc] = []
    diags: list[Diagnostic] = []
    for display, path, walked in _expand(paths):
        if path is None:
            text = sys.stdin.read(MAX_SPEC_BYTES + 1)
            if len(text) > MAX_SPEC_BYTES:
                diags.append(_diag("<stdin>", 0, 0, problems.YAML_UNREADABLE,
                                   f"standard input holds more than {MAX_SPEC_BYTES:,} characters",
                                   "a spec is a few kilobytes; pass one spec per document or file"))
                continue
            d, g = load_text(text, "<stdin>", Path.cwd())
        else:
            try:
                raw = read_bounded(path, MAX_SPEC_BYTES)
            except FileNotFoundError:
                diags.append(_diag(display, 0, 0, problems.YAML_UNREADABLE, "file not found", "check the path"))
                continue
            except OSError as exc:
                diags.append(_diag(display, 0, 0, problems.YAML_UNREADABLE, f"cannot read the file: {exc.strerror}",
                                   "check the path and its permissions"))
                continue
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                diags.append(_diag(display, 0, 0, problems.YAML_UNREADABLE,
                                   f"the file is not UTF-8 text (byte {exc.start})",
                                   "save the spec as UTF-8"))
                continue
            d, g = load_text(text, display, path.resolve().parent)
            if walked:
                # A folder of specs may hold other YAML (rendered manifests, kustomization.yaml):
                # only files named on the command line must be specs.
                d = [doc for doc in d if not is_foreign_document(doc.data)]
        docs.extend(d)
        diags.extend(g)
    return docs, diags
