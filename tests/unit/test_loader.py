"""The loader: YAML text and files → documents with positions, or located LD10x diagnostics."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from llmdeploy.spec.loader import Position, load_paths, load_text


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def problems(text: str) -> list[tuple[int, int, str]]:
    """(line, col, rule) of every diagnostic for ``text``."""
    _, diags = load_text(text, "spec.yaml")
    return [(d.line, d.col, d.rule) for d in diags]


SPEC = """\
apiVersion: llmdeploy.dev/v1alpha1
kind: LLMService
metadata:
  name: chat
runtime:
  maxModelLen: 8192
  extraArgs:
    - --enable-lora
    - "--max-loras=4"
  env: [{name: A, value: "1"}]
"""


# --------------------------------------------------------------------------- positions


def test_positions_of_keys_and_values() -> None:
    docs, diags = load_text(SPEC, "spec.yaml")
    assert diags == []
    (doc,) = docs
    assert doc.data["runtime"]["maxModelLen"] == 8192
    assert doc.positions[("metadata", "name")] == Position(4, 3, 4, 9)
    assert doc.positions[("runtime", "maxModelLen")] == Position(6, 3, 6, 16)
    # a block sequence item: the position of the item itself
    assert doc.positions[("runtime", "extraArgs", 1)] == Position(9, 7, 9, 7)
    # inside a flow sequence of flow mappings
    assert doc.positions[("runtime", "env", 0, "value")] == Position(10, 19, 10, 26)


def test_locate_falls_back_to_the_nearest_parent() -> None:
    (doc,) = load_text(SPEC, "spec.yaml")[0]
    assert doc.locate(("runtime", "maxModelLen")) == (6, 16)
    assert doc.locate(("runtime", "maxModelLen"), key=True) == (6, 3)
    # a key the user did not write: its parent mapping's value
    assert doc.locate(("runtime", "gpuMemoryUtilization")) == doc.locate(("runtime",))
    # nothing written at all: the start of the document
    assert doc.locate(("scaling", "target")) == (1, 1)
    assert doc.has(("runtime", "env", 0, "name"))
    assert not doc.has(("scaling",))
    assert doc.get(("runtime", "extraArgs", 0)) == "--enable-lora"
    assert doc.get(("runtime", "extraArgs", 7), "missing") == "missing"


def test_scalar_types_are_plain_python() -> None:
    text = "i: 3\nf: 0.9\nb: true\nn: null\ns: '007'\nd: 2024-05-01\nts: 2024-05-01T10:00:00Z\n1: numeric key\n"
    (doc,) = load_text(text, "x.yaml")[0]
    assert doc.data == {
        "i": 3, "f": 0.9, "b": True, "n": None, "s": "007", "d": "2024-05-01",
        "ts": "2024-05-01T10:00:00+00:00", "1": "numeric key",
    }
    assert [type(doc.data[k]) for k in ("i", "f", "b", "s")] == [int, float, bool, str]


def test_tags_are_never_executed() -> None:
    (doc,) = load_text("a: !!python/object/apply:os.system ['echo pwned']\nb: !custom 3\n", "x.yaml")[0]
    assert doc.data["b"] == "3"
    assert "pwned" in str(doc.data["a"])  # kept as data


# --------------------------------------------------------------------------- documents


def test_multi_document_positions_are_absolute_and_empty_documents_are_skipped() -> None:
    text = "# header\n---\na: 1\n---\n---\n# second\nb:\n  c: 2\n"
    docs, diags = load_text(text, "multi.yaml")
    assert diags == []
    assert [(d.index, d.start_line, d.data) for d in docs] == [(0, 3, {"a": 1}), (2, 7, {"b": {"c": 2}})]
    assert docs[1].positions[("b", "c")] == Position(8, 3, 8, 6)


def test_a_bad_document_does_not_hide_the_good_ones() -> None:
    text = "a: 1\n---\n- not\n- a mapping\n---\nb: 2\n"
    docs, diags = load_text(text, "multi.yaml")
    assert [d.data for d in docs] == [{"a": 1}, {"b": 2}]
    assert [(d.line, d.col, d.rule) for d in diags] == [(3, 1, "LD103")]
    assert "a list" in diags[0].message


def test_anchors_aliases_and_merge_keys() -> None:
    text = (
        "base: &base\n"
        "  team: search\n"
        "  tier: gold\n"
        "copy: *base\n"
        "merged:\n"
        "  <<: *base\n"
        "  tier: silver\n"
        "items: [*base]\n"
    )
    docs, diags = load_text(text, "a.yaml")
    assert diags == []
    data = docs[0].data
    assert data["copy"] == {"team": "search", "tier": "gold"}
    assert data["merged"] == {"tier": "silver", "team": "search"}
    assert data["items"] == [{"team": "search", "tier": "gold"}]
    pos = docs[0].positions
    assert pos[("merged", "tier")] == Position(7, 3, 7, 9)  # its own key
    assert pos[("merged", "team")] == Position(2, 3, 2, 9)  # merged in: where the anchor defines it


def test_recursive_alias_does_not_crash() -> None:
    docs, diags = load_text("a: &a [*a]\n", "r.yaml")
    assert len(docs) + len(diags) == 1


def test_bom_is_ignored_in_files(tmp_path: Path) -> None:
    write_tree(tmp_path, {"s.yaml": "\ufeffa: 1\nb: 2\n".encode()})
    docs, diags = load_paths([str(tmp_path / "s.yaml")])
    assert diags == []
    assert docs[0].data == {"a": 1, "b": 2}
    assert docs[0].positions[("b",)] == Position(2, 1, 2, 4)


# --------------------------------------------------------------------------- YAML-level errors


def test_syntax_error_points_at_the_parser_stop_and_names_the_start() -> None:
    _, diags = load_text("a: 1\nb: [1, 2\nc: 3\n", "s.yaml")
    assert [(d.line, d.col, d.rule) for d in diags] == [(3, 2, "LD100")]
    assert "flow sequence that starts at line 2, column 4" in diags[0].message
    assert diags[0].file == "s.yaml"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: b: c\n", [(1, 5, "LD100")]),
        ('a: "open\n', [(2, 1, "LD100")]),
        ("a: 1\nb: 2\na: 3\n", [(3, 1, "LD101")]),
        ("top:\n  x: 1\n  y: 2\n  x: 3\n", [(4, 3, "LD101")]),
        ("a:\n\tb: 1\n", [(2, 1, "LD102")]),
        ("a:\n  b:\n  \tc: 1\n", [(3, 3, "LD102")]),
        ("", [(1, 1, "LD103")]),
        ("# only a comment\n", [(1, 1, "LD103")]),
        ("---\n...\n---\n", [(1, 1, "LD103")]),
        ("- a\n- b\n", [(1, 1, "LD103")]),
        ("# comment\n\njust text\n", [(3, 1, "LD103")]),
        ("42\n", [(1, 1, "LD103")]),
    ],
    ids=["mapping-in-plain", "open-quote", "dup-top", "dup-nested", "tab", "tab-nested", "empty",
         "comment-only", "empty-docs", "list", "string", "number"],
)
def test_yaml_level_problems(text: str, expected: list[tuple[int, int, str]]) -> None:
    assert problems(text) == expected


def test_duplicate_key_message_names_the_key_and_both_values() -> None:
    _, (d,) = load_text("runtime:\n  maxModelLen: 8192\n  maxModelLen: 4096\n", "s.yaml")
    assert d.message == 'duplicate key "maxModelLen" with value "4096" (original value: "8192")'
    assert d.hint and "remove or merge" in d.hint


@pytest.mark.parametrize(("text", "kind"), [("- a\n", "a list"), ("x\n", "a string"), ("3\n", "a number"),
                                            ("true\n", "a boolean")])
def test_non_mapping_root_says_what_it_is(text: str, kind: str) -> None:
    _, (d,) = load_text(text, "s.yaml")
    assert d.message == f"the document root is {kind}, not a mapping"


# --------------------------------------------------------------------------- files, folders, stdin


def test_folders_are_expanded_recursively_in_order(tmp_path: Path) -> None:
    write_tree(tmp_path, {
        "b.yaml": "b: 1\n",
        "a.yml": "a: 1\n",
        "sub/c.yaml": "c: 1\n",
        "notes.txt": "not yaml: [\n",
        "sub/README.md": "# no\n",
    })
    docs, diags = load_paths([str(tmp_path)])
    assert diags == []
    assert [Path(d.file).relative_to(tmp_path).as_posix() for d in docs] == ["a.yml", "b.yaml", "sub/c.yaml"]
    assert docs[2].base_dir == (tmp_path / "sub").resolve()


def test_file_names_are_kept_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_tree(tmp_path, {"specs/a.yaml": "a: [\n"})
    monkeypatch.chdir(tmp_path)
    _, (d,) = load_paths(["specs/a.yaml"])
    assert d.file == "specs/a.yaml"
    assert d.line == 2


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    write_tree(tmp_path, {"latin1.yaml": "name: caf\xe9\n".encode("latin-1")})
    docs, diags = load_paths([str(tmp_path / "nope.yaml"), str(tmp_path / "latin1.yaml")])
    assert docs == []
    assert [(d.rule, d.line, d.message) for d in diags] == [
        ("LD100", 0, "file not found"),
        ("LD100", 0, "the file is not UTF-8 text (byte 9)"),
    ]
    assert all(d.file for d in diags)


def test_stdin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("a: 1\n---\nb: [\n"))
    monkeypatch.chdir(tmp_path)
    docs, diags = load_paths(["-"])
    assert docs == []  # a syntax error anywhere in a stream rejects the stream
    assert [(d.file, d.line, d.rule) for d in diags] == [("<stdin>", 4, "LD100")]

    monkeypatch.setattr(sys, "stdin", io.StringIO("a: 1\n"))
    docs, _ = load_paths(["-"])
    assert docs[0].file == "<stdin>"
    assert docs[0].base_dir == tmp_path


# --------------------------------------------------------------------------- the profile cache


def _as_tuple(docs):  # type: ignore[no-untyped-def]
    return [(d.file, d.index, d.data, d.positions, d.start_line, d.text, d.base_dir) for d in docs]


@pytest.mark.parametrize("profile", ["dev", "staging", "production"])
def test_cached_profiles_equal_a_fresh_parse(profile: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmdeploy.resources import profiles_dir
    from llmdeploy.spec.loader import load_text_cached

    monkeypatch.setenv("LLMDEPLOY_CACHE_DIR", str(tmp_path))
    text = (profiles_dir() / f"{profile}.yaml").read_text(encoding="utf-8")
    fresh = load_text(text, f"profiles/{profile}.yaml", tmp_path)
    miss = load_text_cached(text, f"profiles/{profile}.yaml", tmp_path)
    assert list((tmp_path / "docs").glob("*.json")), "a clean parse is cached"
    hit = load_text_cached(text, f"profiles/{profile}.yaml", tmp_path)
    assert _as_tuple(miss[0]) == _as_tuple(hit[0]) == _as_tuple(fresh[0])
    assert miss[1] == hit[1] == []


def test_the_cache_keeps_only_what_json_preserves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmdeploy.spec.loader import load_text_cached

    monkeypatch.setenv("LLMDEPLOY_CACHE_DIR", str(tmp_path))
    docs, diags = load_text_cached("a:\n  f: .nan\n", "p.yaml", tmp_path)  # NaN: not JSON
    assert diags == [] and docs[0].data["a"]["f"] != docs[0].data["a"]["f"]
    bad, bad_diags = load_text_cached("a: [\n", "p.yaml", tmp_path)  # a syntax error
    assert bad == [] and bad_diags
    assert not list(tmp_path.rglob("*.json"))
    again, _ = load_text_cached("a:\n  f: .nan\n", "p.yaml", tmp_path)
    assert again[0].locate(("a", "f")) == (2, 6)


def test_a_corrupt_cache_entry_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmdeploy.spec.loader import load_text_cached

    monkeypatch.setenv("LLMDEPLOY_CACHE_DIR", str(tmp_path))
    text = "replicas: 2\nlabels:\n  team: a\n"
    load_text_cached(text, "p.yaml", tmp_path)
    (entry,) = (tmp_path / "docs").glob("*.json")
    entry.write_text('[{"index": 0}]', encoding="utf-8")
    docs, diags = load_text_cached(text, "p.yaml", tmp_path)
    assert diags == [] and docs[0].data == {"replicas": 2, "labels": {"team": "a"}}
    assert docs[0].locate(("labels", "team")) == (3, 9)


@pytest.mark.parametrize(("text", "line"), [("!0", 1), ("!x 0\n", 1), ("a: 1\n--- !t 5\n", 2), ("a: 1\n---\n!!int 3\n", 3)])
def test_a_tagged_scalar_root_is_a_located_diagnostic(text: str, line: int) -> None:
    # ruamel gives a tagged scalar root no line of its own; this once raised a TypeError.
    docs, diags = load_text(text, "x.yaml")
    roots = [d for d in diags if d.rule == "LD103"]
    assert roots and (roots[0].line, roots[0].col) == (line, 1)
