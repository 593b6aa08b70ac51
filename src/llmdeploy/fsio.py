"""Files on disk: atomic writes and the one user cache (base layer).

Everything llmdeploy writes goes through :func:`write_atomic` (a temporary file in the
same folder, then a rename), and every cache entry lives under the one
:func:`cache_dir`, named with the one :data:`CACHE_VERSION`. A cache is only ever a
speed-up: a missing, unwritable, corrupt or edited entry is ignored and rebuilt (each
entry carries the hash of its source and of itself, see :func:`load_cache`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

#: Bump when the shape of any cache entry changes (data tables, profiles, documents, CRD schemas,
#: the envelope of :func:`store_cache`).
CACHE_VERSION = "3"

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


#: The largest spec or profile file llmdeploy reads (a spec is a few kilobytes; parsing
#: a larger YAML file with positions costs seconds of CPU and hundreds of megabytes).
MAX_SPEC_BYTES = 256 * 1024
#: The largest CRD file (the largest upstream CRD, KServe's LLMInferenceService, is 2.2 MB).
MAX_CRD_BYTES = 32 * 1024 * 1024


def read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of the regular file ``path``, refusing anything else.

    A FIFO would block (it is opened non-blocking and refused), ``/dev/zero`` or
    ``/dev/urandom`` would never end, a socket or a folder cannot be read: each is an
    ``OSError`` whose ``strerror`` says so, as is a file larger than ``limit`` bytes
    (checked on the open file, and by reading at most ``limit + 1`` bytes, so a file that
    grows meanwhile cannot get past it). Symlinks are followed: the user named the file.
    """
    import errno
    import stat

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "it is a folder", str(path))
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a FIFO, device or socket)", str(path))
        if st.st_size > limit:
            raise OSError(errno.EFBIG, f"larger than the limit of {limit:,} bytes", str(path))
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise OSError(errno.EFBIG, f"larger than the limit of {limit:,} bytes", str(path))
        return b"".join(chunks)
    finally:
        os.close(fd)


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


#: The largest cache entry read back (the biggest, a converted CRD schema, is ~3 MB).
MAX_CACHE_ENTRY_BYTES = 64 * 1024 * 1024
_CACHE_MAGIC = "llmdeploy-cache"


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _cache_anchor(environ: Mapping[str, str] | None = None) -> Path | None:
    """The folder that must already exist before llmdeploy creates its cache below it.

    ``$HOME`` (or an absolute ``$XDG_CACHE_HOME``) is never created: a missing home
    folder means no cache, not a new folder. An explicit ``$LLMDEPLOY_CACHE_DIR`` is
    created as asked.
    """
    env = os.environ if environ is None else environ
    if env.get(CACHE_ENV):
        return None
    xdg = env.get("XDG_CACHE_HOME")
    if xdg and Path(xdg).expanduser().is_absolute():
        return Path(xdg).expanduser()
    return Path.home()


def store_cache(path: Path, text: str, source: str = "") -> None:
    """Write a cache entry atomically; an unwritable cache only costs speed.

    The entry records what it was built from (``source``, e.g. the SHA-256 of the file it
    caches) and the SHA-256 of its own content; :func:`load_cache` returns it only when
    both still match. The folder is kept to :data:`CACHE_MAX_ENTRIES` entries: when a
    write makes it larger, the least recently modified entries go (entries are
    content-addressed, so an old one is at worst rebuilt). Nothing is written when the
    home folder (or ``$XDG_CACHE_HOME``) the cache lives under does not exist.
    """
    path = Path(path)
    anchor = _cache_anchor()
    with contextlib.suppress(ValueError, OSError):
        path.relative_to(cache_dir())
        if anchor is not None and not anchor.is_dir():
            return
    envelope = f"{_CACHE_MAGIC} {CACHE_VERSION} {_digest(source)} {_digest(text)}\n{text}"
    with contextlib.suppress(OSError):
        write_atomic(path, envelope)
        _bound(path.parent)


def load_cache(path: Path, source: str = "") -> str | None:
    """The content of a cache entry written by :func:`store_cache` for the same ``source``, else None.

    None (and the entry is ignored) when it is missing, not a regular file (a FIFO is
    refused without blocking), larger than :data:`MAX_CACHE_ENTRY_BYTES`, from another
    cache version, built from another source, or edited or truncated since it was
    written (its SHA-256 no longer matches). The cache is never needed for a correct
    result; callers rebuild on None.
    """
    try:
        raw = read_bounded(Path(path), MAX_CACHE_ENTRY_BYTES).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    header, sep, text = raw.partition("\n")
    parts = header.split(" ")
    if not sep or len(parts) != 4 or parts[0] != _CACHE_MAGIC or parts[1] != CACHE_VERSION:
        return None
    if parts[2] != _digest(source) or parts[3] != _digest(text):
        return None
    return text


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
