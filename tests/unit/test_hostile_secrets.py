"""Credentials never reach a manifest or a log (issue #19, item 3).

Each case of the issue rendered with exit 0 (the credential in the manifest) or was
echoed by LD112/LD120/LD122 into stderr, i.e. into CI logs. Now each is an LD401 error
whose text, in every diagnostics format, holds no part of the secret.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import EXAMPLES, run_cli

from llmdeploy import secrets
from llmdeploy.diagnostics import Diagnostic, Severity, format_github, format_json, format_text

BASE = (EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml").read_text(encoding="utf-8")

# Made-up credentials of each shape (none is real).
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKE"
JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.SflKxwRJSMeKKF2QT4fwpMeJf36P"
SLACK = "xoxb-2048-4096-AbCdEfGhIjKlMnOpQrStUvWx"
GOOGLE = "AIzaSyD3x4mpl3K3yV4lu3-abcdefghijklmnop"
GH = "ghp_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"
GH_FINE = "github_pat_11ABCDEFG0abcdefghijkl_mnopqrstuvwxyz0123456789"
HF = "hf_abcdefghijklmnopqrstuvwxyzABCDEF"

# (spec edit, the secret that must not appear anywhere in the output, where the error points[, its rule
# when not LD401: an env entry named like a credential is LD402, a credential flag in extraArgs LD403])
CASES = {
    "storage uri token": (("storageUri: hf://meta-llama/Llama-3.1-8B-Instruct",
                           "storageUri: https://weights.example.com/llama?token=s3cr3tT0kenValue"),
                          "s3cr3tT0kenValue", "model.storageUri"),
    "gcs signed url": (("storageUri: hf://meta-llama/Llama-3.1-8B-Instruct",
                        ("storageUri: https://storage.googleapis.com/b/llama?X-Goog-Algorithm=GOOG4-RSA-SHA256"
                        "&X-Goog-Signature=0a1b2c3d4e5f60718293a4b5c6d7e8f9")),
                       "0a1b2c3d4e5f60718293a4b5c6d7e8f9", "model.storageUri"),
    "azure sas": (("storageUri: hf://meta-llama/Llama-3.1-8B-Instruct",
                   "storageUri: https://acct.blob.core.windows.net/models/llama?sv=2022-11-02&sig=Zm9vYmFyYmF6cXV4"),
                  "Zm9vYmFyYmF6cXV4", "model.storageUri"),
    "url userinfo": (("storageUri: hf://meta-llama/Llama-3.1-8B-Instruct",
                      "storageUri: https://deploy:Hunter2Hunter2@weights.example.com/llama"),
                     "Hunter2Hunter2", "model.storageUri"),
    "image userinfo": (("image: vllm/vllm-openai:v0.11.0", "image: robot:Pa55w0rdPa55@registry.example.com/vllm:v0.11.0"),
                       "Pa55w0rdPa55", "runtime.image"),
    "password under a neutral env name": (("prefixCaching: true",
                                           "prefixCaching: true\n  env: [{name: DATABASE, value: 'postgres://app:Sup3rS3cret@db/x'}]"),
                                          "Sup3rS3cret", "runtime.env[0].value"),
    "env named password": (("prefixCaching: true", "prefixCaching: true\n  env: [{name: DB_PASSWORD, value: plainpassword1}]"),
                           "plainpassword1", "runtime.env[0].value", "LD402"),
    "bearer jwt": (("prefixCaching: true", f"prefixCaching: true\n  env: [{{name: AUTH_HEADER, value: 'Bearer {JWT}'}}]"),
                   JWT, "runtime.env[0].value"),
    "slack token": (("prefixCaching: true", f"prefixCaching: true\n  env: [{{name: NOTIFY, value: {SLACK}}}]"),
                    SLACK, "runtime.env[0].value"),
    "google key": (("prefixCaching: true", f"prefixCaching: true\n  env: [{{name: MAPS, value: {GOOGLE}}}]"),
                   GOOGLE, "runtime.env[0].value"),
    "aws secret under a neutral name": (("prefixCaching: true", f"prefixCaching: true\n  env: [{{name: BLOB, value: {AWS_SECRET}}}]"),
                                        AWS_SECRET, "runtime.env[0].value"),
    "api_key underscore flag": (("prefixCaching: true", "prefixCaching: true\n  extraArgs: ['--api_key=zz9PluralZAlpha']"),
                                "zz9PluralZAlpha", "runtime.extraArgs[0]", "LD403"),
    "github token in an annotation": (("    team: search", f"    team: search\n  annotations: {{ci: {GH}}}"),
                                      GH, "metadata.annotations.ci"),
    "fine-grained github token": (("    team: search", f"    team: search\n  annotations: {{ci: {GH_FINE}}}"),
                                  GH_FINE, "metadata.annotations.ci"),
    "hf token in unknown-scheme uri (LD112 quotes it)": (
        ("storageUri: hf://meta-llama/Llama-3.1-8B-Instruct", f"storageUri: ftp://x/{HF}"), HF, "model.storageUri"),
    "private key": (("    team: search", "    team: search\n  annotations: {k: '-----BEGIN RSA PRIVATE KEY-----'}"),
                    "BEGIN RSA PRIVATE KEY", "metadata.annotations.k"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_credential_is_refused_and_never_echoed(tmp_path: Path, case: str) -> None:
    (old, new), secret, where, *rule = CASES[case]
    rule_id = rule[0] if rule else "LD401"
    assert old in BASE
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE.replace(old, new, 1), encoding="utf-8")
    for fmt in ("text", "json", "github"):
        r = run_cli("validate", "--format", fmt, str(spec))
        assert r.returncode == 1, (fmt, r.stdout, r.stderr)
        assert secret not in r.stdout + r.stderr, (fmt, r.stdout + r.stderr)
        assert rule_id in r.stdout + r.stderr
    r = run_cli("validate", "--format", "json", str(spec))
    found = [d for d in json.loads(r.stdout)["diagnostics"] if d["rule"] == rule_id]
    assert where in [d["path"] for d in found], found
    rendered = run_cli("render", str(spec))
    assert rendered.returncode == 1 and rendered.stdout == ""
    assert secret not in rendered.stderr


def test_the_allow_list_is_a_spec_field(tmp_path: Path) -> None:
    """A false positive is exempted by its path with a reason (never by a comment); the value then renders."""
    build = "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"  # a random-looking public build id
    spec = tmp_path / "spec.yaml"
    text = BASE.replace("    team: search", f"    team: search\n  annotations: {{build: {build}}}")
    spec.write_text(text, encoding="utf-8")
    r = run_cli("validate", "--format", "json", str(spec))
    assert r.returncode == 1 and "security.allowSecretLike" in r.stdout
    spec.write_text(text + "security:\n  allowSecretLike:\n    - {path: metadata.annotations.build, "
                           "reason: public CI build id}\n", encoding="utf-8")
    r = run_cli("render", str(spec))
    assert r.returncode == 0, r.stderr
    assert build in r.stdout
    # A comment does not exempt anything.
    spec.write_text(text.replace(f"build: {build}", f"build: {build}  # not a secret"), encoding="utf-8")
    assert run_cli("validate", str(spec)).returncode == 1


def test_the_allow_list_needs_a_reason(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE + "security:\n  allowSecretLike:\n    - {path: metadata.name}\n", encoding="utf-8")
    r = run_cli("validate", str(spec))
    assert r.returncode == 1 and "reason" in r.stdout


def test_the_manifest_scan_is_the_last_gate() -> None:
    """A secret-shaped string in a rendered document (whatever its origin) stops the render."""
    from llmdeploy.pipeline import _manifest_secret_diagnostics
    from llmdeploy.spec.loader import load_text
    from llmdeploy.spec.validate import validate_doc

    docs, _ = load_text(BASE, "spec.yaml", Path("."))
    v = validate_doc(docs[0])
    analysis = SimpleNamespace(validated=v, spec=v.spec)
    doc = SimpleNamespace(service="inference/llama-3-1-8b", manifest=SimpleNamespace(kind="ConfigMap", name="x"),
                          obj={"data": {"k": f"url=https://h/x?sig={AWS_SECRET}"}})
    diags = _manifest_secret_diagnostics([analysis], [doc])  # type: ignore[list-item]
    assert [(d.rule, d.path, d.line) for d in diags] == [("LD401", "metadata.name", 7)]
    assert "ConfigMap x at data.k" in diags[0].message and AWS_SECRET not in diags[0].to_text()


# --------------------------------------------------------------------------- the pattern set


POSITIVE = {
    "AKIAIOSFODNN7EXAMPLE": "an AWS access key id",
    AWS_SECRET: "an AWS secret access key",
    GH: "a GitHub token",
    GH_FINE: "a GitHub token",
    SLACK: "a Slack token",
    "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX": "a Slack webhook URL",
    GOOGLE: "a Google API key",
    HF: "a Hugging Face token",
    "sk-proj-abcdefghijklmnopqrstuvwx": "an OpenAI-style API key",
    JWT: "a JSON Web Token",
    "Authorization: Bearer abcdef123456ghijkl": "a bearer credential",
    "-----BEGIN OPENSSH PRIVATE KEY-----": "a private key",
    "s3://u:p4ssword@minio/x": "a password in a URL",
    "robot:Pa55w0rd@registry.example.com/vllm:v1": "a password in an image reference",
    "https://b.s3.amazonaws.com/m?X-Amz-Signature=abc123": "a signed-URL or credential parameter",
    "https://h/x?access_token=abc123def": "a signed-URL or credential parameter",
    "--api-key s3cretValue": "a credential flag",
    "--hf_token=abcdefghij": "a credential flag",
    "Zx8Qp2Lm9Rt4Vw7Ky3Nb6Hc1Jd5Fg0Ss": "a high-entropy string",
}
NEGATIVE = [
    "meta-llama/Llama-3.1-8B-Instruct",
    "vllm/vllm-openai:v0.11.0@sha256:" + "0123456789abcdef" * 4,  # a digest is not userinfo
    "0123456789abcdef0123456789abcdef01234567",  # a git revision (hex)
    "--max-model-len=8192",
    "hf://Qwen/Qwen2.5-7B-Instruct",
    "https://example.com/runbooks?page=1&sort=asc",
    "sum(rate(vllm:request_success_total{namespace=\"inference\"}[5m]))",
    "llmdeploy-vllm-0-11-0-f8c8c573",
    "mailto:ops@example.com",
    "--api-key",  # the flag alone (its value is the next item, LD403 reports it)
    "--api-key puts a credential in the pod spec",  # LD403's own message: prose, not a value
    "password",
]


@pytest.mark.parametrize("text", sorted(POSITIVE))
def test_each_documented_pattern_matches(text: str) -> None:
    found = secrets.find_secrets(text)
    assert found and found[0].what == POSITIVE[text], found
    assert secrets.redact(text) != text and secrets.REDACTED in secrets.redact(text)


@pytest.mark.parametrize("text", NEGATIVE)
def test_ordinary_values_are_not_secrets(text: str) -> None:
    assert secrets.find_secrets(text) == []
    assert secrets.redact(text) == text


def test_every_reporter_redacts() -> None:
    d = Diagnostic(Severity.ERROR, "LD112", f"unknown storage URI scheme in 'ftp://a:{AWS_SECRET}@h/x'",
                   f"try {GH}", "spec.yaml", 3, 4, "model.storageUri")
    for text in (d.to_text(), format_text([d]), format_json([d]), format_github([d])):
        assert AWS_SECRET not in text and GH not in text and secrets.REDACTED in text
    assert d.message.endswith("@h/x'")  # the record keeps the value; only what is printed is redacted


def test_print_error_redacts(capsys: pytest.CaptureFixture[str]) -> None:
    from llmdeploy.cli_common import print_error

    print_error(f"cannot read https://u:{AWS_SECRET}@h/x")
    assert AWS_SECRET not in capsys.readouterr().err
