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


# --------------------------------------------------------------------------- command outputs
#
# The JSON documents `size -o json`, `plan -o json` and `validate -o json` print, written
# once here and published under schemas/ (tests/unit/test_output_schemas.py checks real
# outputs against them and that the files are current). The verdict keys are the contract:
# `valid`, `fits`, `errors` and `warnings` agree with the exit code (0 exactly when `valid`
# and `fits` are true and `errors` is empty); the other keys are the stable ones of
# docs/sizing.md#10-json-contract, and more may be added.

OUTPUTS = ("size", "plan", "validate")
_RULE = {"type": "string", "pattern": "^[A-Z]{2}[0-9]{3}$"}
_NULLABLE_STR = {"type": ["string", "null"]}


def _problem() -> dict[str, object]:
    """An error or warning of size/plan: a sizing reason, a spec diagnostic, or an input error."""
    return {"type": "object", "required": ["message"],
            "properties": {"code": _RULE, "message": {"type": "string"}, "hint": _NULLABLE_STR,
                           "field": {"type": "string"}}}


def _diagnostic() -> dict[str, object]:
    return {"type": "object", "required": ["severity", "rule", "message", "hint", "file", "line", "col", "path"],
            "properties": {"severity": {"enum": ["error", "warning", "info"]}, "rule": _RULE,
                           "message": {"type": "string"}, "hint": _NULLABLE_STR, "file": {"type": "string"},
                           "line": {"type": "integer", "minimum": 0}, "col": {"type": "integer", "minimum": 0},
                           "path": {"type": "string"}}}


def _verdict(fits: dict[str, object] | None = None) -> dict[str, dict[str, object]]:
    return {"valid": {"type": "boolean", "description": "The input is valid (false: errors says why)."},
            "fits": fits or {"type": "boolean", "description": "The model fits as configured."},
            "errors": {"type": "array", "items": {"$ref": "#/$defs/problem"},
                       "description": "Why the exit code is 1; empty exactly when it is 0."},
            "warnings": {"type": "array", "items": {"$ref": "#/$defs/problem"}}}


_VERDICT_KEYS = ["valid", "fits", "errors", "warnings"]


def _report() -> dict[str, object]:
    gib = {"type": "number"}
    return {
        "type": "object",
        "required": [*_VERDICT_KEYS, "reasons", "gpu", "per_gpu", "kv_bytes_per_token", "kv_cache_tokens",
                     "max_concurrency", "max_model_len", "max_num_seqs", "capacity"],
        "properties": {
            **_verdict(),
            "service": {"type": "string", "description": "namespace/name (several specs: a list of reports)."},
            "reasons": {"type": "array", "items": {"$ref": "#/$defs/problem"},
                        "description": "The sizing reasons it does not fit (a subset of errors)."},
            "gpu": {"type": "object", "required": ["name", "memory_gib"],
                    "properties": {"name": {"type": "string"}, "memory_gib": gib}},
            "per_gpu": {"type": "object", "required": [f"{k}_gib" for k in (
                "total", "usable", "weights", "activation", "non_torch", "cuda_graph", "kv_cache")],
                "additionalProperties": gib},
            "kv_bytes_per_token": {"type": "integer"},
            "kv_cache_tokens": {"type": "integer"},
            "max_concurrency": {"type": "number"},
            "max_model_len": {"type": "integer"},
            "max_num_seqs": {"type": "integer"},
            "capacity": {"type": ["object", "null"], "description": "null when it does not fit."},
        },
    }


def _input_error() -> dict[str, object]:
    """What size and plan print for input they cannot size (an unknown model or GPU, an invalid spec)."""
    return {"type": "object", "required": _VERDICT_KEYS,
            "properties": {**_verdict(), "valid": {"const": False}, "fits": {"const": False},
                           "errors": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/problem"}}}}


def output_schema(command: str) -> dict[str, object]:
    """The JSON Schema of ``llmdeploy <command> -o json`` (``size``, ``plan`` or ``validate``)."""
    head = {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://llmdeploy.dev/schemas/{command}-output.schema.json",
            HEADER_KEY: (f"The JSON that `llmdeploy {command} -o json` prints; generated from src/llmdeploy/schema.py, "
                         f"do not edit. Regenerate with: llmdeploy schema --for {command} "
                         f"--output-file schemas/{command}-output.schema.json"),
            "title": f"llmdeploy {command} -o json",
            "$defs": {"problem": _problem(), "diagnostic": _diagnostic()}}
    if command == "size":
        return {**head, "description": "One report, a list of reports (a file with several specs, each with "
                                       "`service`), or an input error.",
                "oneOf": [{"$ref": "#/$defs/report"},
                          {"type": "array", "minItems": 2, "items": {"allOf": [{"$ref": "#/$defs/report"},
                                                                              {"required": ["service"]}]}},
                          {"allOf": [{"$ref": "#/$defs/inputError"}, {"not": {"required": ["reasons"]}}]}],
                "$defs": {**head["$defs"], "report": _report(),  # type: ignore[dict-item]
                          "inputError": _input_error()}}
    if command == "plan":
        option = {"type": "object",
                  "required": ["gpu", "tensor_parallel", "quantization", "gpu_count", "kv_cache_tokens",
                               "max_concurrency", "max_num_seqs", "operating_concurrency", "output_tokens_per_s",
                               "requests_per_s_per_replica", "replicas", "cost_per_1m_output_tokens", "meets_slo",
                               "slo_missed"],
                  "properties": {"gpu": {"type": "string"}, "tensor_parallel": {"type": "integer"},
                                 "quantization": {"type": "string"}, "replicas": {"type": ["integer", "null"]},
                                 "meets_slo": {"type": "boolean"}}}
        plan = {"type": "object", "required": ["model", "max_model_len", "engine", "engine_version", "load", "options",
                                               *_VERDICT_KEYS],
                "properties": {**_verdict({"type": "boolean", "description": "At least one option fits."}),
                               "valid": {"const": True}, "model": {"type": "string"},
                               "max_model_len": {"type": "integer"}, "engine": {"type": "string"},
                               "engine_version": {"type": "string"}, "load": {"type": "object"},
                               "options": {"type": "array", "items": option}},
                "if": {"properties": {"fits": {"const": True}}},
                "then": {"properties": {"options": {"minItems": 1}, "errors": {"maxItems": 0}}},
                "else": {"properties": {"options": {"maxItems": 0}, "errors": {"minItems": 1}}}}
        return {**head, "description": "The options that fit, cheapest first, or an input error.",
                "oneOf": [{"$ref": "#/$defs/plan"}, {"allOf": [{"$ref": "#/$defs/inputError"},
                                                                 {"not": {"required": ["options"]}}]}],
                "$defs": {**head["$defs"], "plan": plan, "inputError": _input_error()}}  # type: ignore[dict-item]
    if command == "validate":
        diags = {"type": "array", "items": {"$ref": "#/$defs/diagnostic"}}
        return {**head, "description": "Every diagnostic, the summary, and the verdict (`valid` is exit code 0).",
                "type": "object", "required": ["diagnostics", "summary", "valid", "fits", "errors", "warnings"],
                "properties": {
                    "diagnostics": diags,
                    "summary": {"type": "object", "required": ["specs", "errors", "warnings", "valid"],
                                "properties": {"specs": {"type": "integer"}, "errors": {"type": "integer"},
                                               "warnings": {"type": "integer"}, "valid": {"type": "boolean"}}},
                    "valid": {"type": "boolean", "description": "Exit code 0 (with --strict, warnings fail too)."},
                    "fits": {"type": ["boolean", "null"],
                             "description": "Every spec fits its GPUs; null when one could not be sized."},
                    "errors": {"type": "array", "items": {"allOf": [{"$ref": "#/$defs/diagnostic"},
                                                                    {"properties": {"severity": {"const": "error"}}}]}},
                    "warnings": {"type": "array",
                                 "items": {"allOf": [{"$ref": "#/$defs/diagnostic"},
                                                     {"properties": {"severity": {"const": "warning"}}}]}}},
                "if": {"properties": {"errors": {"minItems": 1}}},
                "then": {"properties": {"valid": {"const": False}}}}
    raise ValueError(f"no output schema for {command!r}; choose {', '.join(OUTPUTS)}")


def output_schema_text(command: str) -> str:
    return json.dumps(output_schema(command), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
