"""The generated JSON Schema of the spec (``llmdeploy schema``, ``schemas/llmdeploy.schema.json``)."""

from __future__ import annotations

import json

HEADER_KEY = "$comment"
HEADER = (
    "Generated from the pydantic models in src/llmdeploy/spec/models.py by `llmdeploy schema`; "
    "do not edit. Regenerate with: llmdeploy schema --output-file schemas/llmdeploy.schema.json"
)


def schema_dict() -> dict[str, object]:
    from .spec.models import json_schema

    schema = json_schema()
    return {HEADER_KEY: HEADER, **schema}


def schema_text() -> str:
    """The schema as stable, pretty JSON text."""
    return json.dumps(schema_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
