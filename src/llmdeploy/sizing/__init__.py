"""Sizing: vLLM's memory model, capacity and cost (pure functions, no I/O)."""
