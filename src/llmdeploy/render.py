"""Render a plan through the Jinja templates into YAML documents.

One environment (``StrictUndefined``, no autoescape, sandboxed) and YAML-safe
filters. Every value reaches the output through ``yaml`` (a real YAML emitter) or
``q`` (a JSON-quoted scalar, which is valid YAML), so no user string can add keys or
documents, whatever characters it holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from .records import record

if TYPE_CHECKING:  # pragma: no cover
    from jinja2.sandbox import SandboxedEnvironment

    from .plan import Manifest, Plan


@record
class RenderedDoc:
    """One rendered document and the manifest it came from."""

    manifest: Manifest
    text: str  # YAML text of the document, ending with a newline, without '---'
    service: str  # namespace/name of the producing service ("" for shared objects)
    obj: Any = None  # the document parsed back by the check stage (what kubectl will read)


@cache
def _dumper() -> Any:
    """A safe dumper class: libyaml's C emitter when PyYAML has it (about 10× faster)."""
    import yaml

    base = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

    class Dumper(base):  # type: ignore[misc, valid-type]
        def ignore_aliases(self, data: Any) -> bool:  # never emit anchors/aliases
            return True

    def str_rep(dumper: Any, data: str) -> Any:
        # Multi-line strings (scripts, dashboard JSON) as literal blocks, readable in review.
        if "\n" in data:
            return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
        return dumper.represent_str(data)

    Dumper.add_representer(str, str_rep)
    return Dumper


def to_yaml(value: Any, indent: int = 0) -> str:
    """Dump ``value`` as block YAML, every line indented by ``indent`` spaces, no trailing newline."""
    import yaml

    text = yaml.dump(_plain(value), Dumper=_dumper(), default_flow_style=False, sort_keys=False,
                     allow_unicode=True, width=1 << 20)
    if text.endswith("\n...\n"):
        text = text[: -len("...\n")]
    lines = text.rstrip("\n").split("\n")
    pad = " " * indent
    return "\n".join(pad + line if line else line for line in lines)


def quote(value: Any) -> str:
    """A scalar as a JSON literal: strings double-quoted with every control character escaped."""
    return json.dumps(value, ensure_ascii=True)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@cache
def environment() -> SandboxedEnvironment:
    """The one Jinja environment of llmdeploy."""
    from jinja2 import FileSystemLoader, StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    from .resources import templates_dir

    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(templates_dir())),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["yaml"] = to_yaml
    env.filters["q"] = quote
    env.filters["tojson_compact"] = lambda v: json.dumps(_plain(v), sort_keys=True, separators=(",", ":"))
    env.filters["tojson_pretty"] = lambda v: json.dumps(_plain(v), sort_keys=False, indent=2)
    return env


def render_manifest(m: Manifest) -> str:
    """Render one manifest's template."""
    text = environment().get_template(m.template).render(**m.values)
    if not text.endswith("\n"):
        text += "\n"
    return text


def render_plan(plan: Plan) -> list[RenderedDoc]:
    """Render every manifest of a plan."""
    service = f"{plan.context.namespace}/{plan.context.name}"
    return [RenderedDoc(m, render_manifest(m), "" if m.shared else service) for m in plan.manifests]


def select(docs: Iterable[RenderedDoc], only: Sequence[str] | None) -> list[RenderedDoc]:
    """Keep the documents whose kind (or alias) is in ``only`` (case-insensitive)."""
    docs = list(docs)
    if not only:
        return docs
    wanted = {o.strip().lower() for o in only if o.strip()}
    return [d for d in docs if d.manifest.kind.lower() in wanted or wanted & {a.lower() for a in d.manifest.aliases}]


def selectable_names(docs: Iterable[RenderedDoc]) -> list[str]:
    names: set[str] = set()
    for d in docs:
        names.add(d.manifest.kind)
        names.update(d.manifest.aliases)
    return sorted(names, key=lambda n: (n.lower(), n))  # the tie-break keeps the order independent of hashing


def stream(docs: Iterable[RenderedDoc]) -> str:
    """A multi-document YAML stream for ``kubectl apply -f -``."""
    parts = []
    for d in docs:
        source = d.service or "shared"
        parts.append(f"---\n# Source: llmdeploy {source} ({d.manifest.kind})\n{d.text}")
    return "".join(parts)
