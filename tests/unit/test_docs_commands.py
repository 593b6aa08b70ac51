"""Docs as tests: every `llmdeploy` command in a ```console block of README.md and docs/ runs.

Each block runs in a fresh folder that holds the checkout's examples/ (specs and profiles
are read from there), one command after another, so a block may create a file the next
command reads (`init -o x.yaml`, then `validate x.yaml`). A command passes when its exit
code is 0 — or 1 when the block shows its errors (an `error`/`✗` line) — and every output
line the block shows appears in what the command printed (spaces collapsed; a line with
`…` is elided output and only its parts around the `…` are looked for). Commands of other
tools (kubectl, pip, source, a shell loop) are not run; a block preceded by
`<!-- illustrative -->` is not run at all (the marker says why the output cannot be
reproduced here, e.g. it needs a cluster).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```console\n(?P<body>.*?)^```", re.MULTILINE | re.DOTALL)


@dataclass
class Command:
    line: str
    shown: list[str] = field(default_factory=list)


@dataclass
class Block:
    page: str
    line: int
    commands: list[Command]

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def blocks() -> list[Block]:
    out = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for m in BLOCK.finditer(text):
            before = text[: m.start()].rstrip("\n").rsplit("\n", 2)[-2:]
            if any("<!-- illustrative" in b for b in before):
                continue
            cmds: list[Command] = []
            continued = False
            for raw in m.group("body").splitlines():
                if continued:  # a `\` at the end of the line continues the command
                    cmds[-1].line = cmds[-1].line[:-1].rstrip() + " " + raw.strip()
                elif raw.startswith("$ "):
                    cmds.append(Command(raw[2:].strip()))
                elif cmds and raw.strip():
                    cmds[-1].shown.append(raw.rstrip())
                continued = bool(cmds) and not cmds[-1].shown and cmds[-1].line.endswith("\\")
            runnable = [c for c in cmds if _runnable(c.line)]
            if runnable:
                line = text[: m.start("body")].count("\n") + 1
                out.append(Block(page.relative_to(ROOT).as_posix(), line, cmds))
    return out


def _runnable(line: str) -> bool:
    first = line.split()[0] if line.split() else ""
    # A command that pipes into kubectl needs a cluster (and its CRD folder): not run here.
    return first == "llmdeploy" and "kubectl" not in line and "<" not in line.split("#")[0].replace("<(", "")


def _strip_comment(line: str) -> str:
    # A trailing `# comment` (outside quotes) explains the command; it is not part of it.
    lexer = shlex.shlex(line, posix=True, punctuation_chars="|>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    return " ".join(shlex.quote(t) if t not in ("|", ">", ">>") else t for t in lexer)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _found(shown: str, actual: str) -> bool:
    parts = [p.strip() for p in _norm(shown).split("…")]
    return all(p in actual for p in parts if p)


ALL = blocks()
PAGES_WITH_BLOCKS = sorted({b.page for b in ALL})

# Blocks whose shown output drifted from what the command prints today (re-capture them):
# strict, so a block that is fixed fails here until it leaves the list.
STALE: dict[str, str] = {}


def test_the_docs_have_runnable_blocks() -> None:
    assert len(ALL) >= 15, [b.id for b in ALL]


def _workspace(tmp: Path) -> Path:
    """A folder laid out like the checkout (examples/, profiles/, docs/examples/), plus
    `specs/` (a folder of specs, as the README's GitOps line assumes)."""
    shutil.copytree(ROOT / "examples", tmp / "examples")
    shutil.copytree(ROOT / "examples", tmp / "specs")
    shutil.copytree(ROOT / "profiles", tmp / "profiles")
    shutil.copytree(ROOT / "docs" / "examples", tmp / "docs" / "examples")
    return tmp


@pytest.mark.parametrize("page", PAGES_WITH_BLOCKS)
def test_console_blocks_run(page: str, tmp_path: Path) -> None:
    """The page's blocks in order, in one folder: a later block may read what an earlier wrote."""
    work = _workspace(tmp_path)
    env = {**os.environ, "HOME": str(tmp_path / "home"), "NO_COLOR": "1", "COLUMNS": "200",
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    exe = str(Path(sys.executable).with_name("llmdeploy"))
    failures = []
    for block in (b for b in ALL if b.page == page):
        problem = _run_block(block, work, env, exe)
        if block.id in STALE:
            if problem is None:
                failures.append(f"{block.id} is listed in STALE but now matches: remove it from the list")
        elif problem is not None:
            failures.append(problem)
    assert not failures, "\n\n".join(failures)


def _run_block(block: Block, work: Path, env: dict[str, str], exe: str) -> str | None:
    shows_errors = any(re.search(r"\berror\b|✗", s) for c in block.commands for s in c.shown)
    for cmd in block.commands:
        if not _runnable(cmd.line):
            continue
        line = _strip_comment(cmd.line)
        # Run the llmdeploy part of a pipeline (the rest is another tool: jq, head ...).
        head = line.split(" | ", 1)[0]
        argv_text = head.replace("llmdeploy", shlex.quote(exe), 1)
        proc = subprocess.run(argv_text, shell=True, cwd=work, env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=120, check=False)
        allowed = {0, 1} if shows_errors else {0}
        if proc.returncode not in allowed:
            return f"{block.id}: `{cmd.line}` exited {proc.returncode}\n{proc.stderr[-1500:]}"
        actual = _norm(proc.stdout + "\n" + proc.stderr)
        missing = [s for s in cmd.shown if _norm(s) and not _found(s, actual)]
        if missing:
            return f"{block.id}: `{cmd.line}` did not print:\n" + "\n".join(missing[:6])
    return None
