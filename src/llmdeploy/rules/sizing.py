"""LD2xx: sizing rules (the model must fit the GPUs it is given)."""

from __future__ import annotations
