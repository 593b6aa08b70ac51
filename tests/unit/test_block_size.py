"""derive/block_size.py: the engine's --block-size, read once for the planner and the rules."""

from __future__ import annotations

import pytest

from llmdeploy.derive.block_size import VLLM_DEFAULT_BLOCK_SIZE, block_size_arg


@pytest.mark.parametrize(("args", "expected"), [
    ([], None),
    (["--block-size=32"], 32),
    (["--block-size", "32"], 32),
    (["--block-size=8", "--max-num-seqs=4", "--block-size", "32"], 32),  # the last one wins, as in argparse
    (["--block-size"], None),  # no value follows
    (["--block-size=auto"], None),
    (["--block-sizes=32"], None),
])
def test_block_size_arg(args: list[str], expected: int | None) -> None:
    assert block_size_arg(args) == expected


def test_the_default_is_the_engine_tables_for_every_vllm_release() -> None:
    from llmdeploy.engines import releases, resolve_engine

    for version in releases("vllm"):
        assert resolve_engine("vllm", None, version).defaults.block_size == VLLM_DEFAULT_BLOCK_SIZE, version
