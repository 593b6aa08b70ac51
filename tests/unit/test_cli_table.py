"""cli_table: a plain report is byte-for-byte what rich prints on a pipe, and anything else goes to rich."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest

from llmdeploy.cli_table import _NARROW, Report, Table, plain_cell

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _rich_console(buf: io.StringIO):  # type: ignore[no-untyped-def]
    # What cli_size._console() makes when stdout is not a terminal.
    from rich.console import Console

    return Console(file=buf, width=110, highlight=False, soft_wrap=True)


def _by_rich(*items: object) -> str:
    buf = io.StringIO()
    console = _rich_console(buf)
    for item in items:
        console.print(item.to_rich() if isinstance(item, Table) else item)
    return buf.getvalue()


def _by_report(*items: object) -> tuple[str, bool]:
    """The report's output, and whether it needed a rich console."""
    buf = io.StringIO()
    made: list[object] = []

    def make():  # type: ignore[no-untyped-def]
        made.append(1)
        return _rich_console(buf)

    report = Report(make, stream=buf)
    for item in items:
        report.print(item)
    return buf.getvalue(), bool(made)


def _random_table(rng: random.Random, alphabet: str, width_hint: int = 14) -> Table:
    ncols = rng.randint(1, 9)

    def text(n: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, n)))

    t = Table(title=None if rng.random() < 0.2 else text(130) or "t",
              title_justify=rng.choice(["left", "center"]), show_header=rng.random() < 0.8)
    for _ in range(ncols):
        t.add_column(text(9), justify=rng.choice(["left", "right"]))
    for _ in range(rng.randint(0, 6)):
        t.add_row(*(text(width_hint) for _ in range(ncols)))
    return t


@pytest.mark.parametrize("seed", range(2))
def test_random_plain_tables_match_rich(seed: int) -> None:
    rng = random.Random(seed)
    laid_out = 0
    for _ in range(300):
        t = _random_table(rng, "ab XYZ09$,.%×·-/…", width_hint=rng.choice([6, 14, 30]))
        out, needed_rich = _by_report(t)
        assert out == _by_rich(t)
        laid_out += not needed_rich
    assert laid_out > 30  # the plain layout was exercised, not only the fallback


def test_the_narrow_characters_are_one_cell_in_rich() -> None:
    from rich.cells import cell_len

    assert all(cell_len(ch) == 1 for ch in _NARROW)


def test_the_report_style_tags_are_printed_as_rich_prints_them() -> None:
    for line in ("[bold]meta-llama/x on 1 × NVIDIA L4[/bold]", "Verdict: [green]FITS[/green]",
                 "  [red]error[/red] LD201 a.b: does not fit", "[yellow]FITS, AT RISK[/yellow] — 2 ≥ 1"):
        out, needed_rich = _by_report(line)
        assert not needed_rich and out == _by_rich(line)


def test_markup_wide_characters_and_emoji_codes_go_to_rich() -> None:
    for cell in ("[bold]x[/bold]", "a:smile:b", "tab\there", "全角", "😀", " padded "):
        assert not plain_cell(cell) or cell != cell.strip()
        t = Table("t")
        t.add_column("c")
        t.add_row(cell)
        assert t.lines(110) is None
        out, needed_rich = _by_report(t)
        assert needed_rich and out == _by_rich(t)
    for line in ("a [italic]styled[/italic] line", "a list [1, 2] in a message", "a:tada:"):
        out, needed_rich = _by_report(line)
        assert needed_rich and out == _by_rich(line)


def test_a_table_wider_than_the_page_goes_to_rich() -> None:
    t = Table("wide")
    for i in range(12):
        t.add_column(f"column {i}", justify="right")
    t.add_row(*(f"{i * 1234567:,}" for i in range(12)))
    assert t.lines(110) is None
    out, needed_rich = _by_report(t)
    assert needed_rich and out == _by_rich(t)
    # exactly as wide as the page: still plain, and still what rich prints
    t = Table("edge")
    t.add_column("x" * 106)
    assert len(t.lines(110)[1]) == 110  # type: ignore[index]
    assert _by_report(t) == (_by_rich(t), False)


def test_a_terminal_always_gets_rich() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    buf = Tty()
    made: list[object] = []
    report = Report(lambda: made.append(1) or _rich_console(buf), stream=buf)
    t = Table("t")
    t.add_column("c")
    t.add_row("1")
    report.print(t)
    report.print("plain")
    ref = Tty()
    console = _rich_console(ref)
    console.print(t.to_rich())
    console.print("plain")
    assert len(made) == 1 and buf.getvalue() == ref.getvalue()
    assert "\x1b[" in ref.getvalue()  # a terminal: rich's styles


def _through_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every print through rich, as before cli_table."""
    monkeypatch.setattr("llmdeploy.cli_table.Report.print", lambda self, item="": self.console.print(
        item.to_rich() if isinstance(item, Table) else item))


def _report_both_ways(monkeypatch: pytest.MonkeyPatch, run) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    outs = []
    for use_rich in (False, True):
        buf = io.StringIO()
        monkeypatch.setattr("sys.stdout", buf)
        if use_rich:
            _through_rich(monkeypatch)
        run()
        monkeypatch.undo()
        outs.append(buf.getvalue())
    return outs[0], outs[1]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"model": "meta-llama/Llama-3.1-8B-Instruct", "gpu": "l4", "concurrency": "1,8,32,128"},
        {"model": "meta-llama/Llama-3.1-70B-Instruct", "gpu": "h100-sxm", "tensor_parallel": 4, "request_rate": 10.0,
         "tpot_ms": 40.0, "ttft_p95_ms": 500.0},
        {"model": "Qwen/Qwen2.5-72B-Instruct", "gpu": "l4"},  # does not fit: errors, hints, suggestions
        {"model": "microsoft/Phi-3-mini-4k-instruct", "gpu": "l4", "max_model_len": 8192},
        {"model": "Qwen/Qwen3-30B-A3B", "gpu": "h100-sxm", "tensor_parallel": 2, "expert_parallel": True,
         "kv_cache_dtype": "fp8", "engine": "sglang"},
        {"model": "meta-llama/Llama-3.1-8B-Instruct", "gpu": "a10g", "engine": "tensorrt-llm", "price": 0.5},
    ],
    ids=lambda k: " ".join(f"{a}={b}" for a, b in k.items()),
)
def test_size_reports_match_rich(monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, object]) -> None:
    from llmdeploy import cli_size

    plain, rich = _report_both_ways(monkeypatch, lambda: cli_size.run_size(**kwargs))
    assert plain == rich
    assert "Memory per GPU" in plain


@pytest.mark.parametrize("example", ["llama-3.1-8b-l4", "deepseek-r1-h200-pd", "qwen3-235b-h100-2x8-isvc",
                                     "llama-3.1-8b-awq-a10g", "llama-3.1-8b-ab-test"])
def test_size_reports_of_specs_match_rich(monkeypatch: pytest.MonkeyPatch, example: str) -> None:
    from llmdeploy import cli_size

    spec = str(EXAMPLES / f"{example}.llmdeploy.yaml")
    plain, rich = _report_both_ways(monkeypatch, lambda: cli_size.run_size(spec, concurrency="1,16"))
    assert plain == rich
    assert "Capacity per replica" in plain


@pytest.mark.parametrize(
    "kwargs",
    [
        {"model": "meta-llama/Llama-3.1-8B-Instruct"},
        {"model": "meta-llama/Llama-3.1-8B-Instruct", "quantization": "none,fp8", "concurrency": "1,8,32,128"},
        {"model": "meta-llama/Llama-3.1-70B-Instruct", "max_model_len": 32768},
        {"model": "meta-llama/Llama-3.1-8B-Instruct", "request_rate": 5.0, "tpot_ms": 40.0},  # P/D: wide, rich
        {"model": "meta-llama/Llama-3.1-8B-Instruct", "request_rate": 5.0, "disaggregation": False},
        {"model": "meta-llama/Llama-3.1-405B-Instruct"},  # multi-node rows and their notes
        {"model": "meta-llama/Llama-3.1-8B-Instruct", "gpu": "t4", "max_model_len": 131072},  # nothing fits
    ],
    ids=lambda k: " ".join(f"{a}={b}" for a, b in k.items()),
)
def test_plan_reports_match_rich(monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, object]) -> None:
    from llmdeploy import cli_size

    plain, rich = _report_both_ways(monkeypatch, lambda: cli_size.run_plan(**kwargs))
    assert plain == rich
    assert plain.count("\n") > 2
