"""What a credential looks like, and how to print text without one (base layer).

One pattern set serves three places: the scan of every spec string (rule LD401 in
``rules/security.py``), the scan of every string of the rendered manifests before they
are printed or written (``pipeline.render_documents``), and the redaction of every
diagnostic and error message (``diagnostics.py``, ``cli_common.print_error``), so that a
CI log never carries a secret-shaped value, even one a rule quotes.

The patterns (:data:`PATTERNS`, documented in ``docs/security.md``):

* **Known token formats** with a recognisable prefix: AWS access key ids
  (``AKIA``/``ASIA``/``ABIA``/``ACCA`` + 16, docs.aws.amazon.com IAM "unique identifiers"),
  GitHub tokens (``ghp_``/``gho_``/``ghu_``/``ghs_``/``ghr_`` + 36, ``github_pat_``),
  Slack tokens (``xoxa-``/``xoxb-``/``xoxp-``/``xoxr-``/``xoxs-``/``xoxe-``) and webhook URLs,
  Google API keys (``AIza`` + 35), Hugging Face tokens (``hf_`` + 30), OpenAI-style keys
  (``sk-``), JSON Web Tokens (``eyJ….eyJ….…``), ``Bearer`` credentials and PEM private keys.
* **URL userinfo**: ``scheme://user:password@host`` anywhere, and ``user:password@registry/…``
  as an image reference (a ``@sha256:`` digest is not userinfo).
* **Signed-URL and credential query parameters**: ``token=``, ``access_token=``, ``sig=``
  (Azure SAS), ``signature=``, ``X-Amz-Signature=``, ``X-Amz-Credential=``,
  ``X-Amz-Security-Token=``, ``X-Goog-Signature=``, ``X-Goog-Credential=``, ``api_key=``,
  ``password=``, ``client_secret=`` with a non-empty value.
* **Credential flags** with a value: ``--api-key``/``--api_key``, ``--hf-token``,
  ``--ssl-keyfile-password``, ``--password``, ``--token`` (``--flag=value``, or ``--flag value``
  when the value is not a plain lower-case word, so prose such as "--api-key puts" is not one).
* **High-entropy words**: 32 or more characters of ``[A-Za-z0-9+/_=-]`` mixing upper case,
  lower case and digits with a Shannon entropy of at least 4.2 bits per character, and
  the 40-character base64 shape of an AWS secret access key. Hex digests (image
  digests, git revisions) have no upper case and are not matched.

Names say as much as values: :func:`secret_name` tells whether a key or an environment
variable name (``*PASSWORD*``, ``*SECRET*``, ``*TOKEN*``, ``*API_KEY*``…) announces a
credential, so that its literal value is flagged whatever it looks like.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from .records import record

REDACTED = "<redacted>"

_FLAG_NAMES = r"api[-_]key|hf[-_]token|ssl[-_]keyfile[-_]password|password|token"
_QUERY_NAMES = (r"token|access[-_]token|id[-_]token|refresh[-_]token|sig|signature|x-amz-signature|"
                r"x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential|api[-_]?key|"
                r"password|passwd|pwd|client[-_]secret|secret")

#: (what it is, pattern); the group "secret" or "spaced" (else the whole match) is the secret.
PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?:[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----)?")),
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b")),
    ("a GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})")),
    ("a Slack token", re.compile(r"\bxox[aboprse]-[A-Za-z0-9-]{10,}")),
    ("a Slack webhook URL", re.compile(r"hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,}")),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    ("a Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{20,}")),
    ("an OpenAI-style API key", re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}")),
    ("a JSON Web Token", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("a bearer credential", re.compile(r"\b[Bb]earer\s+(?P<secret>[A-Za-z0-9._~+/-]{12,}=*)")),
    ("a password in a URL", re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@?#]*:(?P<secret>[^/\s@?#]+)@")),
    ("a password in an image reference",
     re.compile(r"(?:^|(?<=[\s'\"=(]))[^/\s:@'\"]+:(?P<secret>[^/\s@'\"]+)@(?!sha(?:256|384|512):)"
                r"[A-Za-z0-9.-]+(?::[0-9]+)?/[^\s'\"]+")),
    ("a signed-URL or credential parameter",
     re.compile(rf"[?&;](?:{_QUERY_NAMES})=(?P<secret>[^&\s#;]+)", re.IGNORECASE)),
    # `--api-key=VALUE`; with a space only when VALUE is not a plain lower-case word ("--api-key puts").
    ("a credential flag", re.compile(rf"(?:^|\s)--(?:{_FLAG_NAMES})(?:=(?P<secret>[^\s]+)|\s+(?P<spaced>"
                                     r"(?=[^\s]*[^a-z\s])[^\s-][^\s]{5,}))", re.IGNORECASE)),
)

# A cheap gate before each pattern (same order): a literal every match of the pattern holds.
# Most strings pass none; the patterns themselves are costly on long strings (dashboards).
_GATES: tuple[re.Pattern[str], ...] = tuple(re.compile(g) for g in (  # applied to the lower-cased text
    r"private key", r"a[sk]ia|abia|acca", r"gh[pousr]_|github_pat_", r"xox", r"hooks\.slack\.com", r"aiza", r"hf_",
    r"sk-", r"eyj", r"bearer\s", r"://[^@\s]*@", r"@", r"[?&;][a-z_-]{3,20}=", r"--(?:api|hf|ssl|password|token)",
))

# Candidates for the entropy test: long runs of base64/base64url characters.
_WORD = re.compile(r"[A-Za-z0-9+/_=-]{32,}")
# Inside such a run: exactly 40 characters of the base64 alphabet (an AWS secret access key).
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{40}(?![A-Za-z0-9+/=])")
#: Bits per character from which a long mixed-case word counts as random.
MIN_ENTROPY = 4.2

SECRET_NAME = re.compile(
    r"(token|password|passwd|passphrase|secret|api[-_]?key|access[-_]?key|private[-_]?key|credential|auth[-_]?key)",
    re.IGNORECASE,
)


@record
class SecretMatch:
    """One secret-shaped span of a string.

    Attributes:
        what: what it looks like ("a GitHub token"); never the value.
        start: offset of the secret in the string.
        end: offset just past it.
    """

    what: str
    start: int
    end: int


def entropy(word: str) -> float:
    """Shannon entropy of ``word`` in bits per character."""
    if not word:
        return 0.0
    counts: dict[str, int] = {}
    for ch in word:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(word)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _random_looking(word: str) -> bool:
    core = word.strip("=")
    classes = (any(c.isupper() for c in core), any(c.islower() for c in core), any(c.isdigit() for c in core))
    return all(classes) and entropy(core) >= MIN_ENTROPY


def find_secrets(text: str) -> list[SecretMatch]:
    """Every secret-shaped span of ``text`` (non-overlapping, in order)."""
    if not isinstance(text, str) or len(text) < 8:
        return []
    found: list[SecretMatch] = []
    lowered = text.lower()
    for (what, pattern), gate in zip(PATTERNS, _GATES, strict=True):
        if gate.search(lowered) is None:
            continue
        for m in pattern.finditer(text):
            group = next((g for g in ("secret", "spaced") if g in pattern.groupindex and m.group(g)), 0)
            found.append(SecretMatch(what, m.start(group), m.end(group)))
    for m in _WORD.finditer(text) if len(text) >= 32 else ():
        word = m.group()
        aws = _AWS_SECRET.search(word)
        if aws is not None and (_random_looking(aws.group())
                                or (sum(c.isupper() for c in aws.group()) > 3 and "/" in aws.group())):
            found.append(SecretMatch("an AWS secret access key", m.start() + aws.start(), m.start() + aws.end()))
        elif _random_looking(word):
            found.append(SecretMatch("a high-entropy string", m.start(), m.end()))
    found.sort(key=lambda s: (s.start, -s.end))
    out: list[SecretMatch] = []
    for s in found:
        if out and s.start < out[-1].end:
            if s.end > out[-1].end:  # overlapping: merge into the first description
                out[-1] = SecretMatch(out[-1].what, out[-1].start, s.end)
            continue
        out.append(s)
    return out


def secret_name(name: str) -> bool:
    """True when a key or environment-variable name announces a credential (``DB_PASSWORD``)."""
    return bool(SECRET_NAME.search(name))


def redact(text: str) -> str:
    """``text`` with every secret-shaped span replaced by ``<redacted>``."""
    if not isinstance(text, str) or len(text) < 8:
        return text
    spans = find_secrets(text)
    if not spans:
        return text
    out, last = [], 0
    for s in spans:
        out.append(text[last:s.start])
        out.append(REDACTED)
        last = s.end
    out.append(text[last:])
    return "".join(out)


def describe(spans: Iterable[SecretMatch]) -> str:
    """"a GitHub token and a password in a URL": what the spans look like, without their values."""
    kinds = list(dict.fromkeys(s.what for s in spans))
    if len(kinds) <= 1:
        return kinds[0] if kinds else "a credential"
    return ", ".join(kinds[:-1]) + " and " + kinds[-1]
