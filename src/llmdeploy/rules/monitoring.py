"""LD5xx: monitoring rules."""

from __future__ import annotations
