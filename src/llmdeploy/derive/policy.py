"""Which profile turns the PodDisruptionBudget and the NetworkPolicy on.

Read by the rules (LD3xx on NetworkPolicy settings) and by the planner; written once here.
"""

from __future__ import annotations

# Profiles that turn the policies on when the spec leaves them unset.
PROFILE_DEFAULTS = {"production": True, "staging": True}


def policy_enabled(profile: str | None, value: bool | None, *, production_only: bool) -> bool:
    """Whether a policy is rendered: the spec's explicit choice, else the profile's default.

    ``production_only``: the PodDisruptionBudget is a production default only (a dev
    service on one GPU should drain freely); the NetworkPolicy is on in staging too.
    """
    if value is not None:
        return value
    if production_only:
        return profile == "production"
    return PROFILE_DEFAULTS.get(profile or "", False)
