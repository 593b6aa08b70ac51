"""Report tables without rich when rich would add nothing: the same bytes, a fraction of the time.

``llmdeploy plan`` prints one row per GPU × tensor-parallel option (about a hundred for
one model). rich needs ~100 ms to lay such a table out, plus ~30 ms to import, a third
of the command's time. When the report goes to a pipe or a file (no colours, a fixed
width) and every cell is plain text that fits without wrapping, the layout is simple:
rich's heavy-head box, one space of padding, each column as wide as its widest cell.
:class:`Table` writes exactly those bytes itself and hands everything else (a terminal,
markup, wide or control characters, a table wider than the page) to rich.
``tests/unit/test_cli_table.py`` compares both on real reports and random tables.
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console
    from rich.table import Table as RichTable

# rich's box.HEAVY_HEAD: the header between heavy rules, the rows in light ones.
_TOP = ("┏", "━", "┳", "┓")
_HEAD = ("┃", "┃", "┃")
_HEAD_RULE = ("┡", "━", "╇", "┩")
_ROW = ("│", "│", "│")
_BOTTOM = ("└", "─", "┴", "┘")
_TOP_NO_HEADER = ("┌", "─", "┬", "┐")


# What rich would read as an emoji code (``:smile:``, its console.py/_emoji_replace.py pattern).
_EMOJI_CODE = re.compile(r":\S*?:")
# Characters one cell wide in rich (and terminals), beside printable ASCII: those the reports use.
_NARROW = frozenset("×·…—–−≈±→←≥≤µ²³½°§‘’“”•█€£")
# The styles llmdeploy's reports use; without colours rich prints only the text between.
_STYLE_TAG = re.compile(r"\[/?(?:bold|red|yellow|green)\]")


def plain_cell(text: str) -> bool:
    """Text rich prints as it is, one cell per character: printable ASCII and a few
    one-cell symbols, no markup (``[``), no emoji code (``:name:``), no tab or newline."""
    if "[" in text or _EMOJI_CODE.search(text):
        return False
    return all(" " <= ch <= "~" or ch in _NARROW for ch in text)


class Table:
    """A table for a report: laid out here when plain (see the module), else by rich."""

    def __init__(self, title: str | None = None, *, title_justify: str = "center", show_header: bool = True) -> None:
        self.title = title
        self.title_justify = title_justify
        self.show_header = show_header
        self.columns: list[tuple[str, str]] = []  # (header, justify)
        self.rows: list[tuple[str, ...]] = []
        # How rich may squeeze a column on a page too narrow for the table: "keep" (never cut:
        # a word users grep for), "crop" (cut without an ellipsis: a bar), "" (rich's default).
        self.squeeze: list[str] = []

    def add_column(self, header: str = "", justify: str = "left", squeeze: str = "") -> None:
        self.columns.append((header, justify))
        self.squeeze.append(squeeze)

    def add_row(self, *cells: str) -> None:
        self.rows.append(tuple(cells))

    def lines(self, width: int) -> list[str] | None:
        """The table as rich lays it out on a plain ``width``-column page; None when rich must do it."""
        if not self.columns:
            return None
        texts = [self.title or "", *(h for h, _ in self.columns), *(c for row in self.rows for c in row)]
        if not all(plain_cell(t) and t == t.strip() for t in texts) \
                or any(len(row) != len(self.columns) for row in self.rows):
            return None
        widths = [max([len(h) if self.show_header else 0, *(len(row[i]) for row in self.rows)])
                  for i, (h, _) in enumerate(self.columns)]
        if any(w == 0 for w in widths):
            return None  # rich gives an empty column its own minimum: not worth copying
        total = sum(widths) + 3 * len(widths) + 1
        if total > width:
            return None  # rich would shrink and wrap the columns
        out: list[str] = []
        if self.title is not None:
            # A plain console prints soft-wrapped ("overflow: ignore"): the title as it is,
            # neither justified nor padded, whatever title_justify says.
            out.append(self.title)

        def rule(edge: tuple[str, str, str, str]) -> str:
            return edge[0] + edge[2].join(edge[1] * (w + 2) for w in widths) + edge[3]

        def row(cells: tuple[str, ...], bars: tuple[str, str, str]) -> str:
            parts = [(c.rjust(w) if justify == "right" else c.ljust(w))
                     for c, w, (_, justify) in zip(cells, widths, self.columns, strict=True)]
            return bars[0] + " " + f" {bars[1]} ".join(parts) + " " + bars[2]

        if self.show_header:
            out.append(rule(_TOP))
            out.append(row(tuple(h for h, _ in self.columns), _HEAD))
            out.append(rule(_HEAD_RULE))
        else:
            out.append(rule(_TOP_NO_HEADER))
        out.extend(row(r, _ROW) for r in self.rows)
        out.append(rule(_BOTTOM))
        return out

    def to_rich(self) -> RichTable:
        """The same table as a rich Table (for a terminal, or what :meth:`lines` declines)."""
        from rich.table import Table as RichTable

        t = RichTable(title=self.title, title_justify=self.title_justify,  # type: ignore[arg-type]
                      show_header=self.show_header)
        for i, (header, justify) in enumerate(self.columns):
            squeeze = self.squeeze[i] if i < len(self.squeeze) else ""
            if squeeze == "keep":
                longest = max([len(header), *(len(r[i]) for r in self.rows)])
                t.add_column(header, justify=justify, no_wrap=True, min_width=longest)  # type: ignore[arg-type]
            elif squeeze == "crop":
                t.add_column(header, justify=justify, no_wrap=True, overflow="crop")  # type: ignore[arg-type]
            else:
                t.add_column(header, justify=justify)  # type: ignore[arg-type]
        for r in self.rows:
            t.add_row(*r)
        return t


class Report:
    """Where a report goes: plain lines straight to stdout when rich would add nothing, else a
    rich console made on first need (``make_console``).

    A text line is written as it is when stdout is not a terminal and the line is plain
    (:func:`plain_cell`) once the report's own style tags (``[bold]``, ``[red]``, ...) are
    taken out, as rich does without colours; a :class:`Table` when :meth:`Table.lines`
    lays it out. A reader
    that goes away ends the output quietly, as the rich console's does.
    """

    def __init__(self, make_console: Any, width: int = 110, stream: TextIO | None = None) -> None:
        self._make_console = make_console
        self._console: Console | None = None
        self._stream = stream if stream is not None else sys.stdout
        self._plain = not self._stream.isatty()
        self._width = width
        self._closed = False

    @property
    def console(self) -> Console:
        if self._console is None:
            self._console = self._make_console()
        return self._console

    def print(self, item: Any = "") -> None:
        if self._plain and isinstance(item, Table):
            lines = item.lines(self._width)
            if lines is not None:
                self._write("".join(line + "\n" for line in lines))
                return
            item = item.to_rich()
        elif self._plain and isinstance(item, str) and plain_cell(text := _STYLE_TAG.sub("", item)):
            self._write(text + "\n")
            return
        elif isinstance(item, Table):
            item = item.to_rich()
        self.console.print(item)

    def _write(self, text: str) -> None:
        if self._closed:
            return
        try:
            self._stream.write(text)
            self._stream.flush()  # as rich does after each print: stdout and stderr stay in order
        except BrokenPipeError:
            from .cli_common import silence_stdout

            self._closed = True
            silence_stdout()
