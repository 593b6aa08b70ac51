"""The entry point: the fast path for plain validate/render/size/plan lines, and the quick exit.

The fast path must be invisible: its option tables match the typer commands, and every
command line gives the same exit code, stdout, stderr and files whichever way it runs.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT, SHARED_CRDS, run_cli

from llmdeploy.entry import FAST_COMMANDS, parse_fast

EXAMPLE = str(EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml")


# --------------------------------------------------------------------------- the parser


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["validate", "a.yaml"], {"paths": ["a.yaml"]}),
        (["validate", "-q", "a.yaml", "--strict", "b.yaml"], {"paths": ["a.yaml", "b.yaml"], "quiet": True,
                                                             "strict": True}),
        (["validate", "--format", "json", "-"], {"paths": ["-"], "fmt": "json"}),
        (["validate", "--format=github", "-f", "text", "a.yaml"], {"paths": ["a.yaml"], "fmt": "text"}),
        (["validate", "--", "--strict"], {"paths": ["--strict"]}),
        (["render", "a.yaml", "--crds", "x", "--crds=y", "--output-dir", "out", "--only", "isvc", "-o", "json"],
         {"paths": ["a.yaml"], "crds": ["x", "y"], "output_dir": "out", "only": "isvc", "out_format": "json"}),
        (["render", "--kubernetes-version", "1.31", "--diagnostics-format", "json", "--explain", "a.yaml"],
         {"paths": ["a.yaml"], "kubernetes_version": "1.31", "diag_format": "json", "explain": True}),
        (["size", "a.yaml"], {"spec": "a.yaml"}),
        (["size", "-", "--concurrency", "1,8", "-o", "json"], {"spec": "-", "concurrency": "1,8", "fmt": "json"}),
        (["size", "-m", "x", "--gpu", "l4", "--concurrency", "1,8,32,128"],
         {"model": "x", "gpu": "l4", "concurrency": "1,8,32,128"}),
        (["size", "--model=x", "-g", "h100", "--tp", "2", "--pp=1", "--dp", "08", "--ep", "--nodes", "1",
          "--max-model-len", "4096", "--gpu-memory-utilization", "0.9", "--request-rate", "2.5", "--tpot-ms", "40",
          "--ttft-p95-ms=800.0", "--prompt-tokens", "1000", "--output-tokens", "200", "--price-per-gpu-hour", "3"],
         {"model": "x", "gpu": "h100", "tensor_parallel": 2, "pipeline_parallel": 1, "data_parallel": 8,
          "expert_parallel": True, "nodes": 1, "max_model_len": 4096, "gpu_memory_utilization": 0.9,
          "request_rate": 2.5, "tpot_ms": 40.0, "ttft_p95_ms": 800.0, "prompt_tokens": 1000, "output_tokens": 200,
          "price": 3.0}),
        (["plan", "-m", "x"], {"model": "x"}),
        (["plan", "-m", "x", "--no-disaggregation", "--disaggregation", "--quantization", "none,fp8", "-o", "json"],
         {"model": "x", "disaggregation": True, "quantization": "none,fp8", "fmt": "json"}),
        (["plan", "--no-disaggregation", "--model", "x", "--calibration", "c.yaml"],
         {"model": "x", "disaggregation": False, "calibration": "c.yaml"}),
    ],
)
def test_plain_lines_take_the_fast_path(argv: list[str], expected: dict[str, object]) -> None:
    parsed = parse_fast(argv)
    assert parsed is not None
    assert parsed[1] == expected
    # typed options arrive typed, exactly as typer would pass them
    assert {k: type(v) for k, v in parsed[1].items()} == {k: type(v) for k, v in expected.items()}


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["catalog", "gpus"],                     # not a fast command
        ["validate"],                            # no path: typer reports the missing argument
        ["validate", "--help", "a.yaml"],
        ["validate", "-h"],
        ["validate", "--no-such-option", "a.yaml"],
        ["validate", "-qf", "json", "a.yaml"],   # bundled short options
        ["validate", "-f=json", "a.yaml"],       # click reads "=json" as the value
        ["validate", "a.yaml", "--format"],      # a missing value
        ["validate", "--strict=yes", "a.yaml"],  # a value on a flag
        ["render", "a.yaml", "--output-dir"],
        ["--version"],
        ["size", "a.yaml", "b.yaml"],            # one spec at most: typer reports the extra argument
        ["size", "-m", "x", "--gpu", "l4", "--tp", "two"],   # not a number: typer's message
        ["size", "-m", "x", "--gpu", "l4", "--tp", "1.0"],   # typer converts this one; the fast path does not guess
        ["size", "-m", "x", "--gpu", "l4", "--tp", "-1"],    # a sign
        ["size", "-m", "x", "--gpu", "l4", "--tp", "1_0"],
        ["size", "-m", "x", "--gpu", "l4", "--tp", "²"],     # a digit, but not an ASCII one
        ["size", "-m", "x", "--gpu", "l4", "--request-rate", "1e3"],
        ["size", "-m", "x", "--gpu", "l4", "--request-rate", "inf"],
        ["size", "-m", "x", "--gpu", "l4", "--request-rate", ".5"],
        ["size", "-m", "x", "--gpu", "l4", "--ep=true"],
        ["size", "--model", "--gpu", "l4"],      # an option where a value belongs
        ["size", "-m", "x", "--gpu", "l4", "--disaggregation"],  # plan's option, not size's
        ["plan"],                                # --model is required: typer says so
        ["plan", "--gpu", "l4"],
        ["plan", "-m", "x", "spec.yaml"],        # plan takes no spec
        ["plan", "-m", "x", "--tp", "2"],        # size's option, not plan's
        ["plan", "-m", "x", "--no-disaggregation=1"],
        ["size", "-h"],
        ["plan", "-m", "x", "--help"],
    ],
)
def test_anything_else_goes_to_typer(argv: list[str]) -> None:
    assert parse_fast(argv) is None


# --------------------------------------------------------------------------- the tables match typer


def _click_command(name: str):  # type: ignore[no-untyped-def]
    import typer

    from llmdeploy.cli import app

    group = typer.main.get_command(app)
    return group.commands[name]  # type: ignore[attr-defined]


def _annotation_kind(param) -> str:  # type: ignore[no-untyped-def]
    """The fast-table kind of a typer option from its declared type (Optional[...] unwrapped)."""
    import typing

    annotation = param.type_descriptor.annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if args:
        annotation = args[0]
    return {int: "int", float: "float", str: "value", bool: "flag"}[annotation]


@pytest.mark.parametrize("command", sorted(FAST_COMMANDS))
def test_option_tables_match_the_typer_commands(command: str) -> None:
    import importlib

    fast = FAST_COMMANDS[command]
    click_cmd = _click_command(command)
    seen: dict[str, tuple[str, str]] = {}
    arguments = []
    required = []
    for param in click_cmd.params:
        if param.param_type_name == "argument":
            arguments.append(param)
            continue
        if param.required:
            required.append(param.name)
        if param.is_flag:
            kind = "flag"
            for opt in param.secondary_opts:
                seen[opt] = (param.name, "off")
        elif param.multiple:
            kind = "multi"
        else:
            kind = _annotation_kind(param)
        for opt in param.opts:
            seen[opt] = (param.name, kind)
        if kind != "multi":
            assert kind == _annotation_kind(param), param.name
    assert seen == fast.options, "entry.py's option table drifted from the typer command"
    assert tuple(required) == fast.required
    # the positional argument: its name and how many values it takes
    if fast.argument is None:
        assert arguments == []
    else:
        [arg] = arguments
        assert arg.name == fast.argument
        assert (arg.required, arg.nargs) == ((True, -1) if fast.max_args is None else (False, 1))
        assert fast.min_args == (1 if arg.required else 0)
    # run() takes every option with typer's default.
    module, _, function = fast.target.partition(":")
    run = getattr(importlib.import_module(module), function)
    sig = inspect.signature(run)
    for param in click_cmd.params:
        if param.required:  # the parser only goes ahead when it has a value for it
            assert sig.parameters[param.name].default is inspect.Parameter.empty, param.name
            continue
        default = param.default if param.default not in ((), []) else None
        assert sig.parameters[param.name].default == default, param.name


def _random_line(rng, command: str) -> list[str]:  # type: ignore[no-untyped-def]
    """A random command line of ``command`` from its fast table: every kind of option, both spellings."""
    fast = FAST_COMMANDS[command]
    digits = "0123456789"
    line = [command]
    for required in fast.required:
        line += [next(o for o, (p, _) in fast.options.items() if p == required), "x"]
    if fast.argument is not None:
        line += [f"spec{i}.yaml" for i in range(rng.randint(fast.min_args, fast.max_args or 3))]
    for _ in range(rng.randint(0, 8)):
        name = rng.choice(sorted(fast.options))
        kind = fast.options[name][1]
        if kind in ("flag", "off"):
            line.append(name)
            continue
        if kind == "int":
            value = "".join(rng.choice(digits) for _ in range(rng.randint(1, 6)))
        elif kind == "float":
            value = "".join(rng.choice(digits) for _ in range(rng.randint(1, 4)))
            if rng.random() < 0.6:
                value += "." + "".join(rng.choice(digits) for _ in range(rng.randint(1, 17)))
        else:
            value = rng.choice(["x", "l4", "none,fp8", "1,8,32", "a b", "-", "é"])
        line += [f"{name}={value}"] if name.startswith("--") and rng.random() < 0.3 else [name, value]
    return line


@pytest.mark.parametrize("command", sorted(FAST_COMMANDS))
def test_the_fast_parser_converts_values_as_typer_does(command: str) -> None:
    """Typer's own parse (click context, its pydantic conversion) of random plain lines equals the
    fast parser's keyword arguments over run()'s defaults: same values, same types."""
    import importlib
    import random

    fast = FAST_COMMANDS[command]
    click_cmd = _click_command(command)
    module, _, function = fast.target.partition(":")
    sig = inspect.signature(getattr(importlib.import_module(module), function))
    rng = random.Random(command)
    taken = 0
    for _ in range(300):
        line = _random_line(rng, command)
        parsed = parse_fast(line)
        if parsed is None:
            continue
        taken += 1
        ctx = click_cmd.make_context(command, line[1:])
        expected = dict(ctx.params)
        if fast.max_args is None:
            expected[fast.argument] = list(expected[fast.argument])
        for name, kind in fast.options.values():  # a repeatable option: a list, None when not given
            if kind == "multi":  # (render's --crds: paths from typer, strings here; run() takes both)
                expected[name] = [str(v) for v in expected[name]] or None
        got = {name: p.default for name, p in sig.parameters.items() if p.default is not inspect.Parameter.empty}
        got.update(parsed[1])
        got = {k: got.get(k) for k in expected}
        assert got == expected, line
        assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in expected.items()}, line
    assert taken > 100


# --------------------------------------------------------------------------- both ways give the same result


GOOD = (EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml").read_text(encoding="utf-8")


def _run_both(args: list[str], cwd: Path, stdin: str | None = None) -> tuple[subprocess.CompletedProcess[str], ...]:
    fast = run_cli(*args, cwd=cwd, stdin=stdin)
    slow = run_cli(*args, cwd=cwd, stdin=stdin, env={"LLMDEPLOY_NO_FAST_PATH": "1"})
    return fast, slow


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "spec.yaml"],
        ["validate", "-q", "spec.yaml"],
        ["validate", "--format", "json", "spec.yaml", "bad.yaml"],
        ["validate", "--format=github", "bad.yaml"],
        ["validate", "-f", "text", "--strict", "spec.yaml"],
        ["validate", "--show-resolved", "spec.yaml"],
        ["validate", "missing.yaml"],
        ["validate", "--format", "xml", "spec.yaml"],
        ["render", "spec.yaml"],
        ["render", "--format", "json", "--only", "isvc,pdb", "--explain", "spec.yaml"],
        ["render", "bad.yaml"],
        ["render", "--only", "nothing-matches", "spec.yaml"],
        ["render", "--kubernetes-version", "0.1", "spec.yaml"],
        ["render", "--crds", "no-such-dir", "spec.yaml"],
    ],
    ids=lambda a: " ".join(a),
)
def test_fast_and_typer_paths_agree(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "spec.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "bad.yaml").write_text(GOOD.replace("apiVersion: llmdeploy.dev/v1alpha1",
                                                    "apiVersion: llmdeploy.dev/v1alpha1\nbogusKey: 1"),
                                       encoding="utf-8")
    fast, slow = _run_both(args, tmp_path)
    assert (fast.returncode, fast.stdout, fast.stderr) == (slow.returncode, slow.stdout, slow.stderr)


LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
CALIBRATION = """apiVersion: llmdeploy.dev/v1alpha1
kind: SizingCalibration
entries:
  - gpu: h100-sxm
    engine: vllm
    engineVersion: "0.19.0"
    tensorParallel: 1
    logs: 3
    activationGiB: 0.05
    nonTorchGiB: 0.0
    kvTokensRatio: 0.9
    residualKvError: 0.004
"""


@pytest.mark.parametrize(
    "args",
    [
        # size, flags only: table and JSON, capacity points, load and SLO flags
        ["size", "-m", LLAMA, "--gpu", "l4", "--concurrency", "1,8,32,128"],
        ["size", "-m", LLAMA, "--gpu", "l4", "--concurrency", "1,8,32,128", "-o", "json"],
        ["size", "--model", LLAMA, "-g", "h100-sxm", "--tp", "2", "--prompt-tokens", "1000", "--output-tokens",
         "200", "--request-rate", "5", "--ttft-p95-ms", "800", "--tpot-ms", "40", "--format=json"],
        ["size", "-m", "Qwen/Qwen3-30B-A3B", "-g", "h100-sxm", "--tp", "2", "--ep", "--max-model-len", "32768",
         "--gpu-memory-utilization", "0.85", "--kv-cache-dtype", "fp8", "--price-per-gpu-hour", "2.5"],
        ["size", "-m", LLAMA, "-g", "a10g", "--engine", "sglang", "--max-num-seqs", "64",
         "--max-num-batched-tokens", "4096", "--concurrency", "1,64"],
        # size of a spec file, with and without load flags; stdin
        ["size", "spec.yaml"],
        ["size", "spec.yaml", "-o", "json", "--concurrency", "1,16", "--prompt-tokens", "1000"],
        ["size", "-", "--request-rate", "3"],
        ["size", "--calibration", "calibration.yaml", "spec.yaml", "-o", "json"],
        ["size", "-m", LLAMA, "-g", "h100-sxm", "--engine-version", "0.19.0", "--calibration", "calibration.yaml"],
        # errors: ours (bad values, unknown names, missing files) and typer's (not a number, extra argument)
        ["size", "-m", LLAMA, "--gpu", "l4", "--concurrency", "1,x"],
        ["size", "-m", LLAMA, "--gpu", "l4", "--concurrency", "1,x", "-o", "json"],
        ["size", "-m", LLAMA, "--gpu", "l4", "--concurrency", "0"],
        ["size", "-m", LLAMA, "--gpu", "nope"],
        ["size", "-m", LLAMA, "--gpu", "nope", "-o", "json"],
        ["size", "-m", "no/such-model", "--gpu", "l4"],
        ["size", "-m", LLAMA, "--gpu", "l4", "--tp", "two"],
        ["size", "-m", LLAMA, "--gpu", "l4", "--request-rate", "inf"],
        ["size", "-m", LLAMA, "--gpu", "l4", "--dtype", "int4"],
        ["size", "-m", LLAMA, "--gpu", "l4", "-o", "yaml"],
        ["size", "-m", LLAMA, "--gpu", "l4", "--calibration", "missing.yaml"],
        ["size", "spec.yaml", "-m", LLAMA],
        ["size", "spec.yaml", "bad.yaml"],
        ["size", "bad.yaml", "-o", "json"],
        ["size", "missing.yaml"],
        ["size"],
        # plan: table and JSON, several GPUs and quantizations, a rate and an SLO, P/D on and off
        ["plan", "-m", LLAMA, "--concurrency", "1,8,32,128"],
        ["plan", "-m", LLAMA, "--concurrency", "1,8,32,128", "-o", "json"],
        ["plan", "-m", LLAMA, "--gpu", "l4,h100-sxm", "--quantization", "none,fp8", "--max-model-len", "16384"],
        ["plan", "-m", LLAMA, "--request-rate", "5", "--tpot-ms", "50", "--ttft-p95-ms", "1000"],
        ["plan", "-m", LLAMA, "--request-rate", "5", "--no-disaggregation", "-o", "json"],
        ["plan", "-m", "meta-llama/Llama-3.1-405B-Instruct", "--gpu", "h100-sxm"],
        ["plan", "-m", LLAMA, "--gpu", "t4", "--max-model-len", "131072"],
        ["plan", "-m", LLAMA, "--gpu", "h100-sxm", "--engine-version", "0.19.0", "--calibration=calibration.yaml",
         "--engine", "vllm", "--kv-cache-dtype", "fp8", "--dtype", "bfloat16", "--gpu-memory-utilization", "0.8"],
        # plan errors
        ["plan", "-m", "no/such-model"],
        ["plan", "-m", LLAMA, "--gpu", "nope", "-o", "json"],
        ["plan", "-m", LLAMA, "--quantization", "int3"],
        ["plan", "-m", LLAMA, "--concurrency", "1,x"],
        ["plan", "-m", LLAMA, "--max-model-len", "8k"],
        ["plan", "--gpu", "l4"],
    ],
    ids=lambda a: " ".join(a),
)
def test_fast_and_typer_paths_agree_on_size_and_plan(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "spec.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "bad.yaml").write_text(GOOD.replace("apiVersion: llmdeploy.dev/v1alpha1",
                                                    "apiVersion: llmdeploy.dev/v1alpha1\nbogusKey: 1"),
                                       encoding="utf-8")
    (tmp_path / "calibration.yaml").write_text(CALIBRATION, encoding="utf-8")
    stdin = GOOD if "-" in args else None
    fast, slow = _run_both(args, tmp_path, stdin=stdin)
    assert "Traceback" not in fast.stderr + slow.stderr
    assert (fast.returncode, fast.stdout, fast.stderr) == (slow.returncode, slow.stdout, slow.stderr)


def test_fast_and_typer_paths_agree_on_stdin_and_output_dirs(tmp_path: Path) -> None:
    fast, slow = _run_both(["validate", "-"], tmp_path, stdin=GOOD)
    assert (fast.returncode, fast.stdout, fast.stderr) == (slow.returncode, slow.stdout, slow.stderr) == \
        (0, "✓ 1 spec valid\n", "")
    (tmp_path / "spec.yaml").write_text(GOOD, encoding="utf-8")
    a = run_cli("render", "spec.yaml", "--output-dir", "fast", cwd=tmp_path)
    b = run_cli("render", "spec.yaml", "--output-dir", "slow", cwd=tmp_path, env={"LLMDEPLOY_NO_FAST_PATH": "1"})
    assert a.returncode == b.returncode == 0
    files = {p.relative_to(tmp_path / "fast").as_posix(): p.read_bytes()
             for p in sorted((tmp_path / "fast").rglob("*")) if p.is_file()}
    assert files
    assert files == {p.relative_to(tmp_path / "slow").as_posix(): p.read_bytes()
                     for p in sorted((tmp_path / "slow").rglob("*")) if p.is_file()}


@pytest.mark.skipif(not SHARED_CRDS.is_dir(), reason=f"upstream CRDs not found at {SHARED_CRDS}")
def test_fast_path_with_crds_matches(tmp_path: Path) -> None:
    args = ["render", "--crds", str(SHARED_CRDS), EXAMPLE]
    fast, slow = _run_both(args, tmp_path)
    assert fast.returncode == 0, fast.stderr
    assert (fast.returncode, fast.stdout, fast.stderr) == (slow.returncode, slow.stdout, slow.stderr)


# --------------------------------------------------------------------------- what the fast path skips


def _imported(args: list[str], env: dict[str, str] | None = None) -> set[str]:
    result = run_cli(*args, env={"PYTHONPROFILEIMPORTTIME": "1", **(env or {})})
    assert result.returncode == 0, result.stderr
    return {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}


def _tops(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_fast_path_does_not_import_typer() -> None:
    assert not {m for m in _imported(["validate", EXAMPLE]) if m.split(".")[0] in {"typer", "click", "rich"}}
    assert "typer" in _imported(["validate", EXAMPLE], env={"LLMDEPLOY_NO_FAST_PATH": "1"})


@pytest.mark.parametrize(
    ("args", "needed"),
    [
        # flags only, JSON: neither rich (no table) nor pydantic (no spec to validate)
        (["size", "-m", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "l4", "--concurrency", "1,8,32,128", "-o",
          "json"], set()),
        # the size report: every table, the capacity curve included, fits a pipe's 110 columns
        (["size", "-m", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "l4", "--concurrency", "1,8,32,128"], set()),
        # plan's table on a pipe is laid out by cli_table: no rich
        (["plan", "-m", "meta-llama/Llama-3.1-8B-Instruct", "--concurrency", "1,8,32,128"], set()),
        (["plan", "-m", "meta-llama/Llama-3.1-8B-Instruct", "-o", "json"], set()),
        # a spec file is validated by the pydantic models
        (["size", EXAMPLE, "-o", "json"], {"pydantic", "pydantic_core"}),
    ],
    ids=lambda a: " ".join(a) if isinstance(a, list) else ",".join(sorted(a)) or "-",
)
def test_size_and_plan_import_only_what_they_need(args: list[str], needed: set[str]) -> None:
    heavy = {"typer", "click", "rich", "pydantic", "pydantic_core", "jinja2", "jsonschema"}
    assert _tops(_imported(args)) & heavy == needed
    assert "typer" in _tops(_imported(args, env={"LLMDEPLOY_NO_FAST_PATH": "1"}))


def test_a_plain_size_line_runs_in_process_without_typer() -> None:
    # In a fresh interpreter: main() on a plain size line leaves typer unimported (the fast path ran).
    code = (
        "import sys\n"
        "from llmdeploy.entry import main\n"
        "try:\n"
        "    main(['size', '-m', 'meta-llama/Llama-3.1-8B-Instruct', '--gpu', 'l4', '--concurrency', '1,8',"
        " '-o', 'json'])\n"
        "except SystemExit as exc:\n"
        "    sys.stderr.write(f'exit={exc.code} typer={\"typer\" in sys.modules}\\n')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=ROOT,
                            timeout=120, env={**os.environ, "KUBECONFIG": "/nonexistent"})
    assert result.stderr.strip().splitlines()[-1] == "exit=0 typer=False", result.stderr
    assert '"points"' in result.stdout


# --------------------------------------------------------------------------- the quick exit


def _many_specs(root: Path, n: int = 5) -> Path:
    many = root / "many"
    many.mkdir()
    for i in range(n):
        (many / f"s{i}.yaml").write_text(GOOD.replace("name: llama-3-1-8b", f"name: llama-{i}"), encoding="utf-8")
    return many


def test_a_closed_pipe_is_not_an_error(tmp_path: Path) -> None:
    # `llmdeploy render … | head -1`: the reader leaves early (here with more output than a
    # pipe buffer holds still unwritten); no traceback, no noise, exit 0.
    many = _many_specs(tmp_path)
    with subprocess.Popen([sys.executable, "-m", "llmdeploy", "render", str(many)], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env={**os.environ, "KUBECONFIG": "/nonexistent"}) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.read(10)
        proc.stdout.close()
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 0
    assert "Traceback" not in err and "Exception ignored" not in err


def test_output_is_complete_after_the_quick_exit(tmp_path: Path) -> None:
    # Output larger than any pipe buffer must arrive whole although the process skips teardown.
    many = _many_specs(tmp_path)
    fast = run_cli("render", str(many))
    slow = run_cli("render", str(many), env={"LLMDEPLOY_NO_FAST_PATH": "1", "LLMDEPLOY_DEBUG": "1"})
    assert fast.returncode == 0, fast.stderr
    assert len(fast.stdout) > 65536
    assert fast.stdout == slow.stdout
