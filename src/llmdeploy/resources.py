"""Find the data folders (templates, schemas, profiles) wherever llmdeploy runs from.

They live at the repository top level and are force-included into the wheel as
``llmdeploy/<name>``. ``importlib.resources`` finds them in a wheel install; an
editable install resolves the package to ``src/llmdeploy`` where they are absent,
so we fall back to the checkout's top level (see STYLE.md §7).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_NAMES = ("templates", "schemas", "profiles")


@cache
def data_dir(name: str) -> Path:
    """Return the folder holding ``templates``, ``schemas`` or ``profiles``.

    Raises:
        InternalError: when neither the installed copy nor the checkout has it (exit 3 with
            a plain message: a broken installation, not a bug to report with a traceback).
    """
    if name not in _NAMES:
        raise ValueError(f"unknown data folder {name!r}")
    here = Path(__file__).resolve().parent
    for candidate in (here / name, here.parents[1] / name):
        if candidate.is_dir():
            return candidate
    from .errors import InternalError

    raise InternalError(
        f"llmdeploy data folder {name!r} not found next to {here}; the installation is incomplete",
        "reinstall llmdeploy",
    )


def templates_dir() -> Path:
    """Folder of the Jinja templates."""
    return data_dir("templates")


def profiles_dir() -> Path:
    """Folder of the built-in profiles."""
    return data_dir("profiles")


def schemas_dir() -> Path:
    """Folder of the generated JSON schemas."""
    return data_dir("schemas")
