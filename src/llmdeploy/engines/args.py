"""Argument lists (``runtime.extraArgs``) checked against one engine version's flags.

:func:`check_flag` says whether one flag is right for the pinned version: an error when
it is unknown (with a did-you-mean), never existed, was removed or is not yet added; a
warning when it is deprecated, has no effect or may have been removed.
:func:`parse_args` groups an argument list into flags and values and :func:`check_args`
checks each of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Literal

from ..records import record
from .info import EngineVersionInfo
from .table import _is_flag_token, split_arg
from .version import Version

__all__ = [
    "FlagProblem",
    "ParsedArg",
    "check_args",
    "check_flag",
    "iter_flag_names",
    "parse_args",
]

Severity = Literal["error", "warning"]


@record
class FlagProblem:
    """Why a flag is wrong (``error``) or questionable (``warning``) for a pinned version."""

    flag: str
    kind: Literal[
        "unknown", "never_existed", "removed", "not_yet_added", "maybe_removed", "deprecated", "no_op", "malformed"
    ]
    severity: Severity
    message: str
    hint: str | None
    version: str


@record
class ParsedArg:
    """One flag of an argument list with its value (``value_index`` is None for ``--x=y``)."""

    flag: str
    value: str | None
    index: int
    value_index: int | None = None


# --------------------------------------------------------------------------- argument lists


def parse_args(info: EngineVersionInfo, args: Sequence[str]) -> list[ParsedArg]:
    """Group an argument list (``runtime.extraArgs``) into flags and their values.

    A value may be attached (``--x=y``) or be the next item; a flag the table does not
    know takes the next item as its value when that item is not a flag. Items that are
    not flags and follow no flag are returned with ``flag=""``.
    """
    out: list[ParsedArg] = []
    i = 0
    while i < len(args):
        flag, value = split_arg(args[i])
        if not flag:
            out.append(ParsedArg("", value, i))
            i += 1
            continue
        if value is not None:
            out.append(ParsedArg(flag, value, i))
            i += 1
            continue
        fi = info.flag(flag)
        wants_value = fi.takes_value if fi is not None else True
        nxt = args[i + 1] if i + 1 < len(args) else None
        if wants_value and nxt is not None and not _is_flag_token(nxt):
            out.append(ParsedArg(flag, nxt, i, i + 1))
            i += 2
        else:
            out.append(ParsedArg(flag, None, i))
            i += 1
    return out


def check_args(info: EngineVersionInfo, args: Sequence[str]) -> list[tuple[ParsedArg, FlagProblem]]:
    """Every problem in an argument list, with the argument it belongs to."""
    problems = []
    for pa in parse_args(info, args):
        if not pa.flag:
            continue
        token = args[pa.index]
        problem = check_flag(info, token)
        if problem is None and pa.value_index is None and pa.value is None:
            fi = info.flag(pa.flag)
            if fi is not None and fi.takes_value and not fi.never_existed and fi.available(info.version):
                problem = FlagProblem(
                    pa.flag, "malformed", "error", f"{pa.flag} needs a value", f"write {pa.flag}=<value>", info.version
                )
        if problem is not None:
            problems.append((pa, problem))
    return problems


def _did_you_mean(info: EngineVersionInfo, flag: str) -> list[str]:
    """Up to three close flags (only the close runners-up: a long list of weak guesses is noise)."""
    from ..diagnostics import close_matches

    candidates = info.known_flags()
    probe = flag
    if flag.startswith("--"):
        probe = "--" + flag[2:].replace("_", "-")
        if probe in candidates:
            return [probe]
    return close_matches(probe, sorted(candidates), n=3, spread=0.03)


def _pin(info: EngineVersionInfo) -> str:
    if not info.assumed:
        return f"this spec pins {info.version}"
    if info.requested_version:
        return f"this spec pins {info.requested_version}, checked as {info.version}"
    return f"the version is not pinned, checked as {info.version}"


def check_flag(info: EngineVersionInfo, flag: str) -> FlagProblem | None:
    """Whether ``flag`` (``--x``, ``--x=y`` or an alias) is right for ``info``'s version.

    Errors: the flag never existed, was removed, is not yet in this version, or is not a
    flag of the engine at all (with a did-you-mean). Warnings: deprecated, has no effect,
    or may have been removed. Values and empty strings return None.
    """
    name, _ = split_arg(flag)
    if not name:
        return None
    disp = info.display_name
    v = info.version
    if any(c.isspace() for c in flag.strip()):
        first, _, rest = flag.strip().partition(" ")
        first = first.split("=", 1)[0]
        return FlagProblem(
            first, "malformed", "error",
            f"{flag.strip()!r} is one argument containing a space; {disp} reads it as a single, unknown flag",
            f"write {first}={rest.strip()}, or put {first} and its value in two list items",
            v,
        )
    fi = info.flag(name)
    if fi is None:
        guesses = _did_you_mean(info, name)
        if guesses:
            hint = "did you mean " + " or ".join(guesses) + "?"
        elif info.engine == "tgi":
            hint = "see `text-generation-launcher --help` for the flags of TGI " + v
        elif info.engine == "sglang":
            hint = "see `python3 -m sglang.launch_server --help` for the flags of SGLang " + v
        elif info.engine == "tensorrt-llm":
            hint = (f"see `trtllm-serve --help` for the options of TensorRT-LLM {v}; LLM API settings without an "
                    "option go in the --extra_llm_api_options YAML file")
        else:
            hint = f"see `vllm serve --help` for the flags of vLLM {v}"
        if info.engine == "tgi" and name.startswith("--") and "_" in name:
            dashed = "--" + name[2:].replace("_", "-")
            if info.flag(dashed) is not None:
                hint = f"TGI only accepts the dashed spelling {dashed}"
        if info.engine == "tensorrt-llm" and name.startswith("--") and "-" in name[2:]:
            underscored = "--" + name[2:].replace("-", "_")
            if info.flag(underscored) is not None:
                hint = f"trtllm-serve only accepts the underscore spelling {underscored}"
        return FlagProblem(name, "unknown", "error", f"{name} is not a known {disp} {v} flag", hint, v)

    status = fi.status(v)
    replacement_hint = f"use {fi.replacement}" if fi.replacement else None
    if status == "never_existed":
        return FlagProblem(
            name, "never_existed", "error", f"{name} is not a {disp} flag (it never existed)",
            fi.hint or replacement_hint or "drop it", v,
        )
    if status == "not_yet_added":
        since = fi.added
        what = f"{name} was added in {disp} {since}"
        if fi.negated and fi.negatable_from == since:
            what = f"{name} (the negated form) is accepted from {disp} {since} on"
        return FlagProblem(
            name, "not_yet_added", "error", f"{what}; {_pin(info)}",
            f"pin {disp} >= {since} or drop {name}", v,
        )
    if status == "removed":
        if fi.removed is not None:
            message = f"{name} was removed in {disp} {fi.removed} ({_pin(info)})"
        else:
            message = (
                f"{name} is no longer accepted by {disp} {v} (last seen in {fi.present_in}, gone by {fi.absent_by})"
            )
        return FlagProblem(name, "removed", "error", message, fi.hint or replacement_hint or "drop it", v)
    if status == "maybe_removed":
        return FlagProblem(
            name, "maybe_removed", "warning",
            f"{name} may not exist in {disp} {v}: it was last seen in {fi.present_in} and is gone by {fi.absent_by}",
            fi.hint or replacement_hint or f"check `--help` of {disp} {v}, or drop it", v,
        )
    if status == "deprecated":
        extra = ""
        if fi.no_op_from is not None and Version.parse(v) >= Version.parse(fi.no_op_from):
            extra = " and has no effect"
        if fi.replacement:
            extra += f"; use {fi.replacement}"
        return FlagProblem(
            name, "deprecated", "warning", f"{name} is deprecated since {disp} {fi.deprecated}{extra}",
            fi.hint or replacement_hint, v,
        )
    if status == "no_op":
        return FlagProblem(
            name, "no_op", "warning", f"{name} has no effect since {disp} {fi.no_op_from}",
            fi.hint or replacement_hint or "drop it", v,
        )
    return None


def iter_flag_names(info: EngineVersionInfo) -> Iterator[str]:
    """Every flag name in the engine table (available or not), table order."""
    yield from info._table.flags
