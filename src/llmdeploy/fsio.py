"""Files on disk: atomic writes and the one user cache (base layer).

Everything llmdeploy writes goes through :func:`write_atomic` (a temporary file in the
same folder, then a rename), and every cache entry lives under the one
:func:`cache_dir`, named with the one :data:`CACHE_VERSION`. A cache is only ever a
speed-up: a missing, unwritable or corrupt entry is ignored and rebuilt.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

#: Bump when the shape of any cache entry changes (data tables, profiles, documents, CRD schemas).
CACHE_VERSION = "2"

CACHE_ENV = "LLMDEPLOY_CACHE_DIR"

#: The most entries one cache folder keeps; beyond it the oldest are removed (see :func:`store_cache`).
CACHE_MAX_ENTRIES = 512


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The user cache folder for llmdeploy.

    ``$LLMDEPLOY_CACHE_DIR`` (``~`` expanded), else ``$XDG_CACHE_HOME/llmdeploy``, else
    ``~/.cache/llmdeploy``. As the XDG Base Directory specification says, a relative
    ``XDG_CACHE_HOME`` is ignored (it would put the cache inside whatever folder the
    command runs in, e.g. the user's repository); a relative ``LLMDEPLOY_CACHE_DIR`` is
    taken as given, since the user asked for exactly that.
    """
    env = os.environ if environ is None else environ
    explicit = env.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = env.get("XDG_CACHE_HOME")
    if xdg and Path(xdg).expanduser().is_absolute():
        return Path(xdg).expanduser() / "llmdeploy"
    return Path.home() / ".cache" / "llmdeploy"


def file_mode(path: Path) -> int:
    """The mode a plain ``open(path, "w")`` would give: the existing file's, else 0o666 minus umask.

    ``mkstemp`` creates files readable by the owner only; a generated schema or manifest
    must be readable like any other file the user writes.
    """
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def stage(path: Path, text: str) -> Path:
    """Write ``text`` to a new temporary file next to ``path``, with the mode ``path`` would get."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = file_mode(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder and a rename."""
    path = Path(path)
    tmp = stage(path, text)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def store_cache(path: Path, text: str) -> None:
    """Write a cache entry atomically; an unwritable cache only costs speed.

    The folder is kept to :data:`CACHE_MAX_ENTRIES` entries: when a write makes it larger,
    the least recently modified entries go (entries are content-addressed, so an old one
    is at worst rebuilt).
    """
    with contextlib.suppress(OSError):
        write_atomic(path, text)
        _bound(path.parent)


def _bound(folder: Path) -> None:
    try:
        entries = [e for e in os.scandir(folder) if e.is_file(follow_symlinks=False)]
    except OSError:
        return
    if len(entries) <= CACHE_MAX_ENTRIES:
        return
    entries.sort(key=lambda e: (e.stat(follow_symlinks=False).st_mtime_ns, e.name))
    for entry in entries[: len(entries) - CACHE_MAX_ENTRIES]:
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
