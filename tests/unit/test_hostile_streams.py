"""Streams, input limits and absurd numbers (issue #19, items 4, 5, 6 (relative XDG), 8 and 9).

Each test is one finding of the issue run through the real CLI in a subprocess, where
file descriptors can be closed or pointed at ``/dev/full`` as a CI job would see them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT, run_cli

from llmdeploy import fsio

SPEC = EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml"
BASE = SPEC.read_text(encoding="utf-8")
WARNS = EXAMPLES / "phi-3-mini-hpa-cpu.llmdeploy.yaml"  # renders with a warning on stderr
HAS_DEV_FULL = Path("/dev/full").exists()


def _run(args: list[str], *, stdout: object = subprocess.PIPE, stderr: object = subprocess.PIPE,
         close: tuple[int, ...] = (), env: dict[str, str] | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    def closer() -> None:
        for fd in close:
            os.close(fd)

    return subprocess.run([sys.executable, "-m", "llmdeploy", *args], stdout=stdout, stderr=stderr,  # type: ignore[call-overload]
                          preexec_fn=closer if close else None, cwd=ROOT, timeout=timeout, check=False,
                          env={**os.environ, "KUBECONFIG": "/nonexistent", **(env or {})})


# --------------------------------------------------------------------------- item 9: streams


@pytest.mark.parametrize("command", [["render", str(SPEC)], ["validate", str(SPEC)]])
def test_a_closed_stdout_is_a_clear_error(command: list[str]) -> None:
    """Regression: `llmdeploy render spec >&-` ended in a Python traceback."""
    r = _run(command, close=(1,), stdout=None)
    err = r.stderr.decode()
    assert r.returncode == 1, err
    assert "llmdeploy: error: " in err and "standard output" in err
    assert "Traceback" not in err and "internal error" not in err


@pytest.mark.skipif(not HAS_DEV_FULL, reason="no /dev/full")
@pytest.mark.parametrize("command", [["render", str(SPEC)], ["validate", str(SPEC)]])
def test_stdout_on_a_full_disk_is_a_clear_error(command: list[str]) -> None:
    """Regression: exit 3 "this is a bug in llmdeploy" when stdout's disk was full."""
    with open("/dev/full", "w") as full:
        r = _run(command, stdout=full)
    err = r.stderr.decode()
    assert r.returncode == 1, err
    assert "No space left on device" in err and "bug" not in err and "Traceback" not in err


@pytest.mark.parametrize("how", ["closed", "full"])
def test_a_broken_stderr_does_not_stop_the_manifests(how: str) -> None:
    """Regression: a full or closed stderr (the CI log) meant no manifests at all."""
    if how == "full" and not HAS_DEV_FULL:
        pytest.skip("no /dev/full")
    good = _run(["render", str(WARNS)])
    assert good.returncode == 0 and good.stderr  # the warning goes to stderr
    if how == "closed":
        r = _run(["render", str(WARNS)], close=(2,), stderr=None)
    else:
        with open("/dev/full", "w") as full:
            r = _run(["render", str(WARNS)], stderr=full)
    assert r.returncode == 0
    assert r.stdout == good.stdout


def test_a_non_utf8_stdout_still_gets_utf8_manifests(tmp_path: Path) -> None:
    """Regression: exit 3 when stdout's encoding could not hold a non-ASCII annotation."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE.replace("    team: search", "    team: search\n  annotations: {owner: 'Zoë ☃ Müller'}"),
                    encoding="utf-8")
    want = _run(["render", str(spec)], env={"PYTHONIOENCODING": "utf-8"})
    assert want.returncode == 0, want.stderr
    for encoding in ("ascii", "latin-1"):
        r = _run(["render", str(spec)], env={"PYTHONIOENCODING": encoding})
        assert r.returncode == 0, r.stderr
        assert r.stdout == want.stdout
        assert "Zoë ☃ Müller".encode() in r.stdout


def test_validate_on_an_ascii_stdout_does_not_crash() -> None:
    r = _run(["validate", str(SPEC)], env={"PYTHONIOENCODING": "ascii"})
    assert r.returncode == 0, r.stderr
    assert b"1 spec valid" in r.stdout and b"Traceback" not in r.stderr


def test_a_closed_pipe_stays_quiet() -> None:
    """The reader leaving early (`| head`) is not an error: exit 0, nothing on stderr."""
    with subprocess.Popen([sys.executable, "-m", "llmdeploy", "render", str(EXAMPLES)], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env={**os.environ, "KUBECONFIG": "/nonexistent"}) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.read(100)
        proc.stdout.close()
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 0
    assert "Traceback" not in err and "cannot write" not in err


# --------------------------------------------------------------------------- item 8: input limits


def test_an_oversized_spec_is_refused_quickly(tmp_path: Path) -> None:
    """Regression: a 10 MB spec took 59 s of CPU and 1.7 GB; the cap is 256 KiB."""
    spec = tmp_path / "big.yaml"
    spec.write_text(BASE + "#" * (fsio.MAX_SPEC_BYTES + 1) + "\n", encoding="utf-8")
    r = run_cli("validate", str(spec), timeout=60)
    assert r.returncode == 1
    assert "larger than the limit of 262,144 bytes" in r.stdout + r.stderr


def test_oversized_stdin_is_refused() -> None:
    r = run_cli("validate", "-", stdin=BASE + "#" * (fsio.MAX_SPEC_BYTES + 1), timeout=60)
    assert r.returncode == 1 and "more than 262,144 characters" in r.stdout + r.stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_spec_is_refused_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    r = run_cli("validate", str(fifo), timeout=60)
    assert r.returncode == 1 and "not a regular file" in r.stdout + r.stderr


@pytest.mark.parametrize("target", ["/dev/zero", "fifo"])
def test_a_profile_that_is_not_a_regular_file_is_refused(tmp_path: Path, target: str) -> None:
    """Regression: `profile: /dev/zero` read without limit; a FIFO profile hung."""
    if target == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs here")
        os.mkfifo(tmp_path / "team.yaml")
        target = "team.yaml"
    elif not Path(target).exists():
        pytest.skip(f"no {target}")
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE.replace("profile: production", f"profile: {target}"), encoding="utf-8")
    r = run_cli("validate", str(spec), timeout=60)
    assert r.returncode == 1
    assert "cannot be read (not a regular file" in r.stdout and f"{spec}:11:" in r.stdout


def test_read_bounded_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        fsio.read_bounded(tmp_path, 10)
    f = tmp_path / "f"
    f.write_bytes(b"x" * 11)
    with pytest.raises(OSError, match="larger than the limit of 10 bytes"):
        fsio.read_bounded(f, 10)
    assert fsio.read_bounded(f, 11) == b"x" * 11


# --------------------------------------------------------------------------- item 4: numbers


NUMBERS = [
    # (edit, the line the error must be on, a word of the message)
    (("target: 5", "target: .nan"), 35, "finite"),
    (("target: 5", "target: .inf"), 35, "finite"),
    (("target: 5", "target: 5\n  activationTarget: .nan"), 36, "finite"),
    (("requestsPerSecond: 4", "requestsPerSecond: .inf"), 38, "finite"),
    (("requestsPerSecond: 4", "requestsPerSecond: 1e400"), 38, "finite"),
    (("requestsPerSecond: 4", f"requestsPerSecond: {10**400}"), 38, "number"),
    (("requestsPerSecond: 4", "requestsPerSecond: 1e12"), 38, "at most"),
    (("gpuMemoryUtilization: 0.92", "gpuMemoryUtilization: .nan"), 21, "finite"),
    (("itlP95Seconds: 0.15", "itlP95Seconds: -.inf"), 47, "finite"),
    (("itlP95Seconds: 0.15", "itlP95Seconds: 1e9"), 47, "at most"),
    (("maxReplicas: 6", "maxReplicas: 100000000000000000000000000000"), 33, "between 1 and 1000"),
    (("minReplicas: 2", "minReplicas: 1000000"), 32, "at most"),
    (("maxModelLen: 8192", "maxModelLen: 8192\n  maxNumBatchedTokens: 1000000000000"), 21, "at most"),
    (("maxNumSeqs: auto", "maxNumSeqs: 100000000"), 22, "between 1 and 65536"),
    (("avgPromptTokens: 512", "avgPromptTokens: 99999999999"), 39, "at most"),
    (("target: 5", "target: 1e300"), 35, "at most 1,000,000"),
]


@pytest.mark.parametrize(("edit", "line", "word"), NUMBERS, ids=[n[0][1].splitlines()[-1].strip() for n in NUMBERS])
def test_non_finite_and_absurd_numbers_are_refused_at_their_line(tmp_path: Path, edit: tuple[str, str], line: int,
                                                                  word: str) -> None:
    """Regression: `.nan`/`.inf` reached KEDA thresholds and dashboard JSON, `requestsPerSecond: .inf`
    ended in OverflowError (exit 3), `maxNumBatchedTokens: 10**12` was blamed on another line."""
    old, new = edit
    assert old in BASE
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE.replace(old, new, 1), encoding="utf-8")
    for command in ("validate", "render"):
        r = run_cli(command, "--format" if command == "validate" else "--diagnostics-format", "text", str(spec))
        out = r.stdout + r.stderr
        assert r.returncode == 1, out
        assert f"{spec}:{line}:" in out and word in out, out
        assert "Traceback" not in out and "internal error" not in out and "Infinity" not in r.stdout


def test_xdg_cache_home_relative_is_ignored() -> None:
    """Fixed earlier (item 6): a relative XDG_CACHE_HOME would put the cache in the working folder."""
    assert fsio.cache_dir({"XDG_CACHE_HOME": "cache"}) == Path.home() / ".cache" / "llmdeploy"


def test_trailing_newlines_in_names_are_refused() -> None:
    """Fixed earlier (item 5): naming's patterns end with \\Z, so `name\\n` is not a DNS label."""
    from llmdeploy import naming

    assert naming.dns1035_problem("llama\n") is not None
    assert not naming.is_dns1123_subdomain("a.b\n")


def test_a_trailing_newline_in_a_storage_uri_is_refused(tmp_path: Path) -> None:
    """Fixed earlier (item 5): the storage-URI patterns end with \\Z, so the newline cannot reach storageUri."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE.replace("storageUri: hf://meta-llama/Llama-3.1-8B-Instruct",
                                 'storageUri: "hf://meta-llama/Llama-3.1-8B-Instruct\\n"'), encoding="utf-8")
    r = run_cli("render", str(spec))
    assert r.returncode == 1 and r.stdout == "" and "LD112" in r.stderr and f"{spec}:14:" in r.stderr
