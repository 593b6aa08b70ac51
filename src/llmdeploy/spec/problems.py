"""Ids of the diagnostics the loader and the schema stage emit (LD100-LD108).

These come before any rule can run: there is no validated spec yet, so they cannot be
rule functions. Each id is written here once, named by what went wrong; the loader and
``spec/validate.py`` use the names, and ``rules/spec.py`` registers their documentation
under the same names. Every other rule id is declared once, by its rule, in ``rules/``
(a test keeps ``"LDxxx"`` literals out of every other module).
"""

from __future__ import annotations

YAML_UNREADABLE = "LD100"
DUPLICATE_KEY = "LD101"
TAB_INDENT = "LD102"
NO_SPEC = "LD103"
BAD_VALUE = "LD104"
UNKNOWN_KEY = "LD105"
WRONG_API = "LD106"
MISSING_KEY = "LD107"
BAD_PROFILE = "LD108"
