"""LD3xx: scaling and rollout rules (combinations that cannot work)."""

from __future__ import annotations
