"""Collector ``secretscan``: secrets found by their shape in the text files of an image.

Two kinds of match, both from ``ruleset/data/secret-patterns.yaml`` (validated at load, see
:func:`load_patterns`):

- **token**: a value whose shape names its issuer (a GitHub token starts ``ghp_``, an AWS key
  ID ``AKIA``...), the rule families of gitleaks' default configuration and trivy's built-in
  secret rules, plus private key blocks, JSON web tokens and passwords inside URLs;
- **assignment**: a key naming a secret (``password``, ``API_KEY``, ``client_secret``...)
  assigned a value with ``=``, ``:``, ``=>`` or ``:=``: INI, ``.env``, YAML, JSON, TOML,
  properties, systemd ``Environment=``, docker-compose ``environment:`` lists, shell
  ``export``. Configuration and environment files (:func:`is_config`) need a value of at least
  4 characters; any other text file (scripts, code) the gitleaks generic-api-key bar: at least
  10 characters, 3.5 bits of entropy per character and a digit.

Every match records why it is *not* a finding when it is not (``ignored``): a placeholder or
template value (``${VAR}``, ``<password>``, ``***``, ``example``), an entropy or length below
the pattern's bar, a documentation value, a JWT whose header does not decode, an assignment
whose value is a token already recorded. Nothing of a value leaves the collector but its
length, its entropy and, for tokens, the fixed public prefix of its format (``ghp_``).

What is scanned (bounded; it decides what is *not* looked at):

- regular files of the shared walk (never symlinks) under :data:`SCAN_ROOTS` and every
  account's home, minus package databases, certificate stores and language library trees
  (:data:`SKIP_PREFIXES`), directories of documentation, translations, tests, examples and
  vendored code (:data:`SKIP_DIRS`), and binary, media, archive and documentation files by
  name (:data:`SKIP_SUFFIXES`);
- a file whose first :data:`SNIFF_BYTES` hold a NUL byte is binary and skipped;
- at most :data:`MAX_FILE_BYTES` (1 MiB) of each file: a longer file is scanned to there
  and listed in ``partial``;
- at most :data:`MAX_FILES` files and :data:`MAX_TOTAL_BYTES` bytes per image, at most
  :data:`MAX_PER_FILE` matches per file and :data:`LIST_CAP` in all: past any of those the
  facts are incomplete and the rules reading them cannot be evaluated.
"""

from __future__ import annotations

import base64
import binascii
import functools
import importlib
import json
import math
import posixpath
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from imageaudit.facts.accounts.homes import home_dirs
from imageaudit.facts.base import CollectContext, Collector
from imageaudit.imagefs import FileStat, ImageFSError, ReadResult
from imageaudit.model import Source

NAME = "secretscan"
PATTERNS_FILE = "secret-patterns.yaml"
MAX_DATA_FILE = 1024 * 1024
MAX_REPEAT = 10_000

MAX_FILE_BYTES = 1024 * 1024
SNIFF_BYTES = 8 * 1024
MAX_FILES = 50_000
MAX_TOTAL_BYTES = 256 * 1024 * 1024
MAX_PER_FILE = 500
LIST_CAP = 10_000
PARTIAL_CAP = 1_000
MAX_KEY_CHARS = 64

SCAN_ROOTS = (
    "/etc",
    "/root",
    "/home",
    "/opt",
    "/srv",
    "/usr/local",
    "/var/www",
    "/var/lib",
    "/var/opt",
    "/app",
    "/usr/src/app",
)
SYSTEM_TREES = (
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/usr",
    "/boot",
    "/dev",
    "/proc",
    "/sys",
    "/run",
    "/tmp",
    "/nonexistent",
    "/var/cache",
    "/var/spool",
    "/var/mail",
    "/var/backups",
    "/var/log",
    "/var/tmp",
    "/var/run",
)
SKIP_PREFIXES = (
    # package databases and their copies of shipped configuration
    "/var/lib/dpkg",
    "/var/lib/apt",
    "/var/lib/ucf",
    "/var/lib/rpm",
    "/var/lib/yum",
    "/var/lib/dnf",
    "/var/lib/apk",
    "/var/lib/pacman",
    "/var/lib/containers",
    "/var/lib/snapd",
    "/var/lib/flatpak",
    # the account databases (the password rules judge them)
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/shadow-",
    "/etc/gshadow-",
    "/etc/security/opasswd",
    # certificate stores (public material)
    "/etc/ssl/certs",
    "/etc/ca-certificates",
    "/etc/pki/ca-trust/extracted",
    "/etc/pki/tls/certs",
    # language runtimes and their libraries
    "/usr/local/go",
    "/usr/local/include",
    "/usr/local/share",
    "/usr/local/man",
    "/usr/local/lib/node_modules",
)
SKIP_PREFIX_RE = re.compile(r"^/usr/local/lib/python[0-9.]*/")
SKIP_DIRS = frozenset(
    {
        "doc",
        "docs",
        "man",
        "locale",
        "locales",
        "i18n",
        "test",
        "tests",
        "testdata",
        "__tests__",
        "example",
        "examples",
        "node_modules",
        "bower_components",
        "site-packages",
        "dist-packages",
        "vendor",
        "__pycache__",
        ".cache",
    }
)
SKIP_SUFFIXES = (
    ".md",
    ".rst",
    ".adoc",
    ".png",
    ".jpg",
    ".jpeg",
    ".gif",
    ".ico",
    ".bmp",
    ".webp",
    ".svg",
    ".woff",
    ".woff2",
    ".ttf",
    ".otf",
    ".eot",
    ".gz",
    ".xz",
    ".bz2",
    ".zst",
    ".zip",
    ".tar",
    ".tgz",
    ".7z",
    ".jar",
    ".war",
    ".ear",
    ".whl",
    ".egg",
    ".deb",
    ".rpm",
    ".apk",
    ".so",
    ".a",
    ".o",
    ".pyc",
    ".pyo",
    ".class",
    ".mo",
    ".dll",
    ".exe",
    ".bin",
    ".db",
    ".sqlite",
    ".sqlite3",
    ".map",
    ".min.js",
    ".lock",
    ".sum",
)
SKIP_NAMES = frozenset({"package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "go.sum"})
CONFIG_SUFFIXES = (
    ".env",
    ".conf",
    ".cnf",
    ".cf",
    ".ini",
    ".cfg",
    ".yaml",
    ".yml",
    ".json",
    ".properties",
    ".toml",
    ".xml",
    ".config",
    ".service",
    ".socket",
    ".container",
)
CONFIG_NAMES = frozenset(
    {"environment", ".npmrc", ".pypirc", ".yarnrc", ".gemrc", ".boto", ".gitconfig"}
)
CONFIG_DIRS = ("/etc/default/", "/etc/sysconfig/", "/etc/conf.d/")
_COMMENT = ("#", ";", "//", "--", "*", "<!--", "rem ", "REM ")


# -- the pattern file ---------------------------------------------------------------------------


class PatternError(ValueError):
    """The pattern file is missing, unreadable, invalid, or holds an unsafe expression."""


def check_regex(source: str, flags: int = 0) -> re.Pattern[str]:
    """Compile ``source`` if it is safe to run on hostile text, else raise ``PatternError``.

    Safe: every quantifier bounded (at most :data:`MAX_REPEAT`), no quantifier inside a
    quantified group, no back-reference. Python's backtracking then stays linear in the text.
    """
    try:
        compiled = re.compile(source, flags)
    except re.error as exc:
        raise PatternError(f"invalid regex {source!r}: {exc}") from exc
    parser: Any = importlib.import_module("re._parser")
    constants: Any = importlib.import_module("re._constants")
    repeats = {constants.MAX_REPEAT, constants.MIN_REPEAT}
    possessive = getattr(constants, "POSSESSIVE_REPEAT", None)
    if possessive is not None:
        repeats.add(possessive)

    def walk(items: Any, inside_repeat: bool) -> None:
        for op, arg in items:
            if op in repeats:
                _low, high, body = arg
                if high == constants.MAXREPEAT or high > MAX_REPEAT:
                    raise PatternError(f"unbounded quantifier in {source!r}")
                if inside_repeat:
                    raise PatternError(f"nested quantifier in {source!r}")
                walk(body, True)
            elif op in (constants.GROUPREF, constants.GROUPREF_EXISTS):
                raise PatternError(f"back-reference in {source!r}")
            elif op is constants.SUBPATTERN:
                walk(arg[-1], inside_repeat)
            elif op is constants.BRANCH:
                for branch in arg[1]:
                    walk(branch, inside_repeat)
            elif op in (constants.ASSERT, constants.ASSERT_NOT):
                walk(arg[1], inside_repeat)
            elif op is getattr(constants, "ATOMIC_GROUP", None):
                walk(arg, inside_repeat)

    walk(parser.parse(source, flags), False)
    return compiled


class TokenSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,63}$")
    family: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")
    title: str = Field(min_length=3, max_length=120)
    severity: Literal["critical", "high", "moderate", "low"]
    keywords: list[str] = Field(min_length=1)
    regex: str
    prefix: list[str] = Field(default_factory=list)
    min_entropy: float = Field(default=0.0, ge=0.0, le=8.0)
    ignore: list[str] = Field(default_factory=list)
    verify: Literal["jwt"] | None = None
    marker: bool = False
    placeholders: bool = False

    @field_validator("keywords")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        for word in value:
            if not word or word != word.lower():
                raise ValueError(f"keyword {word!r} must be non-empty lower case")
        return value


class Bar(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_length: int = Field(ge=1, le=256)
    min_entropy: float = Field(ge=0.0, le=8.0)
    require_digit: bool = False


class AssignmentForm(BaseModel):
    """A further way a file assigns a value to a key: an XML element, a ``key value`` line."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    regex: str
    config_only: bool = True  # looked for in configuration files only


class AssignmentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    keywords: list[str] = Field(min_length=1)
    regex: str
    forms: list[AssignmentForm] = Field(default_factory=list)
    ignore_keys: list[str] = Field(default_factory=list)
    non_values: list[str] = Field(default_factory=list)
    config: Bar
    other: Bar


class PatternFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    tokens: list[TokenSpec] = Field(min_length=1)
    placeholders: list[str] = Field(default_factory=list)
    assignment: AssignmentSpec


@dataclass(frozen=True, slots=True)
class Token:
    """A compiled token pattern."""

    spec: TokenSpec
    regex: re.Pattern[str]
    ignore: tuple[re.Pattern[str], ...]


@dataclass(frozen=True, slots=True)
class Patterns:
    """The compiled pattern file."""

    tokens: tuple[Token, ...]
    placeholders: tuple[re.Pattern[str], ...]
    assign_keywords: tuple[str, ...]
    assign_regex: re.Pattern[str]
    # The further forms, each with whether it is for configuration files only.
    assign_forms: tuple[tuple[re.Pattern[str], bool], ...]
    ignore_keys: tuple[re.Pattern[str], ...]
    non_values: frozenset[str]
    config: Bar
    other: Bar


def default_patterns_path() -> Path:
    """``data/secret-patterns.yaml`` of the rule set shipped in the package."""
    return Path(__file__).resolve().parents[1] / "ruleset" / "data" / PATTERNS_FILE


def load_patterns(path: Path) -> Patterns:
    """Read, validate and compile the pattern file; any fault raises ``PatternError``."""
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_DATA_FILE + 1)
    except OSError as exc:
        raise PatternError(f"{path}: cannot read: {exc.strerror}") from exc
    if len(data) > MAX_DATA_FILE:
        raise PatternError(f"{path}: larger than {MAX_DATA_FILE} bytes")
    try:
        parsed = PatternFile.model_validate(yaml.safe_load(data.decode("utf-8")))
    except (yaml.YAMLError, UnicodeDecodeError, ValidationError) as exc:
        raise PatternError(f"{path}: {exc}") from exc
    ids = Counter(t.id for t in parsed.tokens)
    if dupes := sorted(i for i, n in ids.items() if n > 1):
        raise PatternError(f"{path}: duplicate token ids {', '.join(dupes)}")
    tokens = []
    for spec in parsed.tokens:
        regex = check_regex(spec.regex)
        if spec.marker == ("secret" in regex.groupindex):
            raise PatternError(
                f"{path}: {spec.id}: a value pattern needs a group `secret`, a marker none"
            )
        tokens.append(Token(spec, regex, tuple(check_regex(s) for s in spec.ignore)))
    assign = check_regex(parsed.assignment.regex, re.I)
    forms = tuple((check_regex(f.regex, re.I), f.config_only) for f in parsed.assignment.forms)
    for regex in (assign, *(r for r, _ in forms)):
        if not {"key", "value"} <= set(regex.groupindex):
            raise PatternError(f"{path}: an assignment regex needs groups `key` and `value`")
    return Patterns(
        tokens=tuple(tokens),
        placeholders=tuple(check_regex(s, re.I) for s in parsed.placeholders),
        assign_keywords=tuple(parsed.assignment.keywords),
        assign_regex=assign,
        assign_forms=forms,
        ignore_keys=tuple(check_regex(s, re.I) for s in parsed.assignment.ignore_keys),
        non_values=frozenset(v.lower() for v in parsed.assignment.non_values),
        config=parsed.assignment.config,
        other=parsed.assignment.other,
    )


@functools.lru_cache(maxsize=4)
def _cached(path: str, mtime: float) -> Patterns:
    return load_patterns(Path(path))


def shipped_patterns() -> Patterns:
    """The shipped pattern file, loaded once (reloaded when it changes)."""
    path = default_patterns_path()
    try:
        mtime = path.stat().st_mtime
    except OSError as exc:
        raise PatternError(f"{path}: cannot read: {exc.strerror}") from exc
    return _cached(str(path), mtime)


# -- the facts ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SecretMatch:
    """One value that looks like a secret; never the value itself."""

    kind: Literal["token", "assignment"]
    pattern: str  # token pattern id, or "config-assignment" / "generic-assignment"
    family: str  # github, aws, ... ; "assignment" for assignments
    title: str
    severity: str  # the pattern's (assignments: "high")
    path: str
    key: str | None  # the assigned name (assignments, and tokens found in one)
    shown: str  # the fixed public prefix of the token format ("ghp_"), else ""
    marker: bool  # the match marks a secret-bearing structure (a key block), not a value
    length: int
    entropy: float  # Shannon bits per character of the value
    ignored: str | None  # why this is not a finding; None: it is one
    source: Source


@dataclass(frozen=True, slots=True)
class SecretScanFacts:
    """What the scan found, and how far it went."""

    matches: tuple[SecretMatch, ...]
    files_scanned: int
    bytes_scanned: int
    binary_skipped: int
    partial: tuple[str, ...]  # files longer than MAX_FILE_BYTES: only their start was scanned
    truncated: bool  # a budget or cap stopped the scan: later files or matches missing


# -- scanning -----------------------------------------------------------------------------------


def entropy(value: str) -> float:
    """Shannon entropy of ``value`` in bits per character."""
    if not value:
        return 0.0
    n = len(value)
    return max(0.0, -sum(c / n * math.log2(c / n) for c in Counter(value).values()))


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top + "/")


def in_scope(path: str, roots: Sequence[str]) -> bool:
    """Whether the scan looks at ``path`` (by place and name; see the module docstring)."""
    if not any(_under(path, r) for r in roots):
        return False
    if any(_under(path, p) for p in SKIP_PREFIXES) or SKIP_PREFIX_RE.match(path):
        return False
    parts = path.split("/")
    if any(p in SKIP_DIRS for p in parts[:-1]):
        return False
    name = parts[-1].lower()
    return name not in SKIP_NAMES and not name.endswith(SKIP_SUFFIXES)


def is_config(path: str) -> bool:
    """Configuration and environment files (the lower bar for assignments)."""
    name = posixpath.basename(path).lower()
    return (
        name.endswith(CONFIG_SUFFIXES)
        or name in CONFIG_NAMES
        or name.startswith(".env")
        or path.startswith(CONFIG_DIRS)
        or "docker-compose" in name
    )


def _placeholder(value: str, patterns: Patterns) -> bool:
    return any(p.search(value) for p in patterns.placeholders)


def _jwt_header(value: str) -> bool:
    head = value.split(".", 1)[0]
    try:
        decoded = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))
        header = json.loads(decoded)
    except (binascii.Error, ValueError):
        return False
    return isinstance(header, dict) and ("alg" in header or "typ" in header)


def _line_at(text: str, pos: int, starts: list[int]) -> int:
    """1-based line of offset ``pos`` (``starts``: offsets of line starts, filled lazily)."""
    if not starts:
        starts.append(0)
        starts.extend(m.end() for m in re.finditer("\n", text))
    lo, hi = 0, len(starts)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if starts[mid] <= pos:
            lo = mid
        else:
            hi = mid
    return lo + 1


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _ignored_key(key: str, patterns: Patterns) -> bool:
    """A key naming something about a secret; camelCase read as snake_case (passwordPolicy)."""
    snake = _CAMEL.sub("_", key)
    return any(p.search(key) or p.search(snake) for p in patterns.ignore_keys)


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith(_COMMENT)


@dataclass
class _FileScan:
    path: str
    text: str
    lower: str
    patterns: Patterns
    found: list[SecretMatch]
    starts: list[int]
    token_spans: dict[int, list[tuple[int, int]]]  # line -> spans of token values

    def add(self, match: SecretMatch) -> bool:
        if len(self.found) >= MAX_PER_FILE:
            return False
        self.found.append(match)
        return True

    def tokens(self) -> bool:
        """Every token pattern whose keyword shows in the file; False when the cap hit."""
        for tok in self.patterns.tokens:
            spec = tok.spec
            if not any(k in self.lower for k in spec.keywords):
                continue
            for m in tok.regex.finditer(self.text):
                if spec.marker:
                    value, start, end = m.group(0), m.start(), m.end()
                else:
                    group = "secret" if m.group("secret") is not None else "uuid"
                    value, start, end = m.group(group), m.start(group), m.end(group)
                line = _line_at(self.text, start, self.starts)
                ignored = self._judge_token(tok, value)
                shown = next((p for p in spec.prefix if value.startswith(p)), "")
                if len(shown) >= len(value):
                    shown = ""
                if not self.add(
                    SecretMatch(
                        kind="token",
                        pattern=spec.id,
                        family=spec.family,
                        title=spec.title,
                        severity=spec.severity,
                        path=self.path,
                        key=None,
                        shown=shown,
                        marker=spec.marker,
                        length=len(value),
                        entropy=round(entropy(value), 2),
                        ignored=ignored,
                        source=Source(self.path, line),
                    )
                ):
                    return False
                if ignored is None:
                    self.token_spans.setdefault(line, []).append((start, end))
        return True

    def _judge_token(self, tok: Token, value: str) -> str | None:
        spec = tok.spec
        if spec.marker:
            return None
        if any(p.search(value) for p in tok.ignore):
            return "documentation value"
        if spec.placeholders and _placeholder(value, self.patterns):
            return "placeholder"
        if spec.verify == "jwt" and not _jwt_header(value):
            return "not a JSON web token"
        if entropy(value) < spec.min_entropy:
            return f"entropy below {spec.min_entropy}"
        return None

    def assignments(self, config: bool) -> bool:
        """Every assignment of a secret-named key; False when the cap hit."""
        pats = self.patterns
        if not any(k in self.lower for k in pats.assign_keywords):
            return True
        bar = pats.config if config else pats.other
        pattern = "config-assignment" if config else "generic-assignment"
        regexes = [pats.assign_regex, *(r for r, only in pats.assign_forms if config or not only)]
        offset = 0
        for number, line in enumerate(self.text.split("\n"), start=1):
            here = offset
            offset += len(line) + 1
            low = line.lower()
            if not any(k in low for k in pats.assign_keywords) or _is_comment(line):
                continue
            seen: set[int] = set()  # a value two forms find is one assignment
            for m in (m for regex in regexes for m in regex.finditer(line)):
                key = m.group("key")
                if m.start("value") in seen or _ignored_key(key, pats):
                    continue
                seen.add(m.start("value"))
                raw = m.group("value")
                value = raw[1:-1] if raw[:1] in "\"'" and len(raw) >= 2 else raw
                value = value.strip()
                span = (here + m.start("value"), here + m.end("value"))
                ignored = self._judge_value(value, bar, number, span)
                if not self.add(
                    SecretMatch(
                        kind="assignment",
                        pattern=pattern,
                        family="assignment",
                        title="secret assigned in a configuration file"
                        if config
                        else "secret assigned in a text file",
                        severity="high",
                        path=self.path,
                        key=key[:MAX_KEY_CHARS],
                        shown="",
                        marker=False,
                        length=len(value),
                        entropy=round(entropy(value), 2),
                        ignored=ignored,
                        source=Source(self.path, number),
                    )
                ):
                    return False
        return True

    def _judge_value(
        self, value: str, bar: Bar, line: int, span: tuple[int, int]
    ) -> str | None:
        if not value:
            return "empty"
        if any(s < span[1] and span[0] < e for s, e in self.token_spans.get(line, ())):
            return "reported as a token"
        if _placeholder(value, self.patterns):
            return "placeholder"
        if value.lower() in self.patterns.non_values or _NUMBER.match(value):
            return "not a secret value"
        if value.startswith(("/", "./", "../", "~/", "file:")) or _URL_NO_USER.match(value):
            return "a path or URL"
        if _IDENTIFIER.match(value):
            return "names a variable"
        if len(value) < bar.min_length:
            return f"shorter than {bar.min_length} characters"
        if entropy(value) < bar.min_entropy:
            return f"entropy below {bar.min_entropy}"
        if bar.require_digit and not (
            any(c.isdigit() for c in value) and any(c.isalpha() for c in value)
        ):
            return "no digit and letter"
        return None


_NUMBER = re.compile(r"^[-+]?[0-9]{1,30}(?:\.[0-9]{1,30})?[smhdkKMGTB]?$")
_URL_NO_USER = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]{1,20}://[^@\s]{0,2048}$")
_IDENTIFIER = re.compile(r"^[A-Z][A-Z0-9]{0,40}_[A-Z0-9_]{1,60}$")


def scan_text(path: str, text: str, patterns: Patterns) -> tuple[list[SecretMatch], bool]:
    """Every match in one file's text; the flag says the per-file cap cut the list."""
    scan = _FileScan(path, text, text.lower(), patterns, [], [], {})
    complete = scan.tokens() and scan.assignments(is_config(path))
    return scan.found, not complete


def scan_roots(ctx: CollectContext) -> tuple[str, ...]:
    """:data:`SCAN_ROOTS` and every account's home outside the system trees (system
    accounts' homes such as ``/usr/sbin`` or ``/var/spool/lpd`` are not homes to scan)."""
    homes = tuple(
        h.path
        for h in home_dirs(ctx)
        if h.present and h.path != "/" and not any(_under(h.path, t) for t in SYSTEM_TREES)
    )
    return tuple(dict.fromkeys((*SCAN_ROOTS, *homes)))


def collect(ctx: CollectContext) -> SecretScanFacts:
    """Scan the text files in scope for tokens and assigned secrets, within the budgets."""
    patterns = shipped_patterns()
    walk = ctx.walk()
    roots = scan_roots(ctx)
    found: list[SecretMatch] = []
    partial: list[str] = []
    files = spent = binary = 0
    cut = False
    for st in walk:
        if not _candidate(st, roots):
            continue
        if files >= MAX_FILES or spent >= MAX_TOTAL_BYTES:
            ctx.incomplete(f"secret scan stopped at its budget ({files} files, {spent} bytes)")
            cut = True
            break
        first = _read(ctx, st.path, SNIFF_BYTES)
        if first is None:
            continue
        if b"\0" in first.data:
            binary += 1
            continue
        result = _read(ctx, st.path, MAX_FILE_BYTES) if first.truncated else first
        if result is None:
            continue
        files += 1
        spent += len(result.data)
        if result.truncated and len(partial) < PARTIAL_CAP:
            partial.append(st.path)
        matches, file_cut = scan_text(st.path, result.text(), patterns)
        if file_cut:
            ctx.incomplete(f"more than {MAX_PER_FILE} secret-like values", st.path)
            cut = True
        found.extend(matches)
        if len(found) > LIST_CAP:
            found = found[:LIST_CAP]
            ctx.incomplete(f"more than {LIST_CAP} secret-like values; the scan stopped")
            cut = True
            break
    cut = ctx.walk_cut() or cut
    return SecretScanFacts(
        matches=tuple(found),
        files_scanned=files,
        bytes_scanned=spent,
        binary_skipped=binary,
        partial=tuple(partial),
        truncated=cut,
    )


def _read(ctx: CollectContext, path: str, limit: int) -> ReadResult | None:
    """A file of the walk, or None; one that is there but cannot be read leaves the facts
    incomplete (a secret in it would go unseen)."""
    try:
        return ctx.fs.read(path, limit)
    except FileNotFoundError:
        return None
    except ImageFSError as exc:
        ctx.incomplete(f"cannot be read: {exc}", path)
        return None


def _candidate(st: FileStat, roots: Sequence[str]) -> bool:
    return st.is_file and st.size > 0 and in_scope(st.path, roots)


COLLECTOR = Collector(name=NAME, patterns=(), collect=collect, needs_walk=True)
