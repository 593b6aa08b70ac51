"""The KV block size the engine caches with, which the router's prefix scorers must hash with.

The planner writes it into the endpoint picker's config (``blockSizeTokens`` of the
prefix-cache scorer, the precise scorer's ``tokenProcessorConfig.blockSize``) and the rules
compare the spec's ``router.prefixBlockSize`` and the rendered config with it (LD707,
LD712), so both read the engine's ``--block-size`` here.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["VLLM_DEFAULT_BLOCK_SIZE", "block_size_arg"]

#: vLLM's ``--block-size`` default (``defaults.block_size`` of engines/vllm.yaml).
VLLM_DEFAULT_BLOCK_SIZE = 16


def block_size_arg(args: Iterable[str]) -> int | None:
    """The last ``--block-size`` of an engine argv (``--block-size=N`` or ``--block-size N``).

    None when there is none or its value is not a whole number.
    """
    found = None
    items = list(args)
    for i, a in enumerate(items):
        if a.startswith("--block-size="):
            found = a.split("=", 1)[1]
        elif a == "--block-size" and i + 1 < len(items):
            found = items[i + 1]
    return int(found) if found and found.isdigit() else None
