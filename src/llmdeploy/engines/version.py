"""Engine release versions: parsing and ordering, the version an image tag pins, ranges.

:class:`Version` orders releases like PEP 440; :meth:`Version.parse` is memoized (the
engine tables repeat the same few dozen versions). :func:`parse_image_version` reads the
version an image reference pins. Version ranges in the engine tables are half-open:
``from`` is the first release with a value, ``until`` the first release without it
(:class:`_Range`; :func:`_resolve_ranges` merges the ranges that cover a version).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import total_ordering
from typing import Any

from ..datafiles import deep_merge
from ..records import record

__all__ = ["Version", "parse_image_version"]


# --------------------------------------------------------------------------- versions

_VERSION_RE = re.compile(
    r"""
    ^\s*v?
    (?P<release>\d+(?:\.\d+)*)
    (?:[-_.]?(?P<pre_l>alpha|beta|preview|pre|rc|a|b|c)[-_.]?(?P<pre_n>\d+)?)?
    (?:[-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n>\d+)?)?
    (?:[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>\d+)?)?
    (?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?
    \s*$
    """,
    re.IGNORECASE | re.VERBOSE,
)
_PRE_NORMAL = {"alpha": "a", "a": "a", "beta": "b", "b": "b", "c": "rc", "pre": "rc", "preview": "rc", "rc": "rc"}
_PRE_RANK = {"a": 0, "b": 1, "rc": 2}
_PARSED: dict[str, Version] = {}  # text -> Version (immutable, so shared)


@total_ordering
@dataclass(frozen=True, eq=False)
class Version:
    """A release version ordered like PEP 440: ``0.10.1.1 > 0.9.2``, ``0.6.3 < 0.6.3.post1``.

    Pre-releases sort before their release (``0.11.0rc1 < 0.11.0``), dev builds before
    pre-releases, post-releases after. Trailing zeros do not matter (``0.9 == 0.9.0``);
    a local label (``+g4f35be10a``) is kept for display and ignored in comparisons.
    """

    release: tuple[int, ...]
    pre: tuple[str, int] | None = None
    post: int | None = None
    dev: int | None = None
    local: str | None = None

    @classmethod
    def parse(cls, text: str | Version) -> Version:
        """Parse ``"0.6.3"``, ``"v0.10.1.1"``, ``"0.6.3.post1"``, ``"0.11.0rc1"``, ``"3.3.4"``.

        Raises:
            ValueError: the text is not a version.
        """
        if isinstance(text, Version):
            return text
        known = _PARSED.get(text)
        if known is not None:  # the engine tables repeat the same few dozen versions
            return known
        m = _VERSION_RE.match(text)
        if m is None:
            raise ValueError(f"{text!r} is not a version")
        pre = None
        if m.group("pre_l"):
            pre = (_PRE_NORMAL[m.group("pre_l").lower()], int(m.group("pre_n") or 0))
        post = int(m.group("post_n") or 0) if m.group("post_l") else None
        dev = int(m.group("dev_n") or 0) if m.group("dev_l") else None
        version = cls(
            release=tuple(int(p) for p in m.group("release").split(".")),
            pre=pre,
            post=post,
            dev=dev,
            local=m.group("local"),
        )
        _PARSED[text] = version
        return version

    def _key(self) -> tuple[Any, ...]:
        release = list(self.release)
        while len(release) > 1 and release[-1] == 0:
            release.pop()
        # (-1,) < (0, ...) < (1,): dev-only builds < pre-releases < the release itself.
        if self.pre is not None:
            pre: tuple[int, ...] = (0, _PRE_RANK[self.pre[0]], self.pre[1])
        elif self.post is None and self.dev is not None:
            pre = (-1,)
        else:
            pre = (1,)
        post: tuple[int, ...] = (-1,) if self.post is None else (0, self.post)
        dev: tuple[int, ...] = (1,) if self.dev is None else (0, self.dev)
        return (tuple(release), pre, post, dev)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() == other._key()

    def __lt__(self, other: Version) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    @property
    def is_prerelease(self) -> bool:
        """True for ``rc``/``a``/``b`` and ``.dev`` builds."""
        return self.pre is not None or self.dev is not None

    def __str__(self) -> str:
        s = ".".join(str(p) for p in self.release)
        if self.pre is not None:
            s += f"{self.pre[0]}{self.pre[1]}"
        if self.post is not None:
            s += f".post{self.post}"
        if self.dev is not None:
            s += f".dev{self.dev}"
        if self.local:
            s += f"+{self.local}"
        return s


def _v(text: str | None) -> Version | None:
    return None if text is None else Version.parse(text)


_TAG_VERSION_RE = re.compile(
    r"^v?(?P<ver>\d+(?:\.\d+){1,3}(?:(?:rc|a|b)\d+)?(?:\.post\d+)?(?:\.dev\d+)?)(?:[-_+][A-Za-z0-9._-]*)?\Z",
    re.IGNORECASE,
)


def parse_image_version(image: str | None) -> str | None:
    """The engine version an image reference pins, or None when it pins none.

    ``vllm/vllm-openai:v0.6.3`` -> ``"0.6.3"``; ``:v0.10.1.1`` -> ``"0.10.1.1"``;
    ``:0.6.3.post1`` -> ``"0.6.3.post1"``; ``ghcr.io/huggingface/text-generation-inference:3.3.4-rocm``
    -> ``"3.3.4"``. ``latest``, ``nightly``, ``sha-…`` tags, a missing tag and a bare
    ``@sha256:`` digest give None (a digest pins bytes, not a version we can read).
    With both a tag and a digest the tag's version is returned.
    """
    if not image:
        return None
    ref = image.strip()
    if "@" in ref:
        ref = ref.split("@", 1)[0]
    slash, colon = ref.rfind("/"), ref.rfind(":")
    if colon <= slash:  # no tag, or the colon belongs to a registry host:port
        return None
    m = _TAG_VERSION_RE.match(ref[colon + 1 :])
    if m is None:
        return None
    try:
        return str(Version.parse(m.group("ver")))
    except ValueError:  # pragma: no cover - the regex only admits versions
        return None


# --------------------------------------------------------------------------- version ranges


@record
class _Range:
    """Values that hold for the releases from ``start`` (inclusive) until ``until`` (exclusive)."""

    start: Version | None
    until: Version | None
    values: Mapping[str, Any]

    def covers(self, v: Version) -> bool:
        return (self.start is None or v >= self.start) and (self.until is None or v < self.until)


def _resolve_ranges(base: Mapping[str, Any], ranges: Sequence[_Range], v: Version) -> dict[str, Any]:
    out = dict(base)
    for r in ranges:
        if r.covers(v):
            out = deep_merge(out, r.values)
    return out
