"""The password candidates: documented defaults, username-as-password, common weak passwords.

``ruleset/data/default-passwords.yaml`` lists defaults documented by distributions, appliances
and vendors, each with its ``source`` and ``reference``; ``ruleset/data/weak-passwords.txt``
lists the most common weak passwords, its provenance stated at the top. Both are validated
at load (pydantic for the YAML) and a bad file is a :class:`PasswordDictionaryError`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

DEFAULTS_FILE = "default-passwords.yaml"
WEAK_FILE = "weak-passwords.txt"
MAX_DATA_FILE_BYTES = 1 << 20
# Longer names are not tried as passwords: nobody types them, and they bloat the requests.
MAX_USERNAME_CANDIDATE = 64


class PasswordDictionaryError(ValueError):
    """A dictionary file is missing, unreadable or does not match its schema."""


class DefaultPassword(BaseModel):
    """One documented default. ``user: null`` means any account of that product."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user: StrictStr | None
    password: StrictStr = Field(min_length=1)
    source: StrictStr = Field(min_length=1)
    reference: StrictStr = Field(min_length=1)


class DefaultPasswordFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    entries: tuple[DefaultPassword, ...] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A password to try and where it comes from."""

    password: str
    origin: str
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class PasswordDictionary:
    defaults: tuple[DefaultPassword, ...]
    weak: tuple[str, ...]
    weak_reference: str = WEAK_FILE

    def candidates_for(self, account: str) -> tuple[Candidate, ...]:
        """Candidates in the order they are tried, without duplicates.

        The account's documented defaults first, then the user name itself and ``name123``,
        then the common weak passwords, then documented defaults not bound to a user.
        """
        ordered: list[Candidate] = [
            Candidate(e.password, f"default password of user {e.user} in {e.source}", e.reference)
            for e in self.defaults
            if e.user == account
        ]
        if 0 < len(account) <= MAX_USERNAME_CANDIDATE:
            ordered.append(Candidate(account, "username-as-password"))
            ordered.append(Candidate(account + "123", "username-as-password variant"))
        ordered.extend(Candidate(p, "common weak password", self.weak_reference) for p in self.weak)
        ordered.extend(
            Candidate(e.password, f"default password of every account in {e.source}", e.reference)
            for e in self.defaults
            if e.user is None
        )
        return _dedupe(ordered)


def _dedupe(candidates: Iterable[Candidate]) -> tuple[Candidate, ...]:
    seen: set[str] = set()
    out: list[Candidate] = []
    for c in candidates:
        if c.password and c.password not in seen:
            seen.add(c.password)
            out.append(c)
    return tuple(out)


def default_data_dir() -> Path:
    """``data/`` of the rule set shipped in the package."""
    return Path(__file__).resolve().parents[1] / "ruleset" / "data"


def _read(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_DATA_FILE_BYTES + 1)
    except OSError as exc:
        raise PasswordDictionaryError(f"{path}: cannot read: {exc.strerror}") from exc
    if len(data) > MAX_DATA_FILE_BYTES:
        raise PasswordDictionaryError(f"{path}: larger than {MAX_DATA_FILE_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PasswordDictionaryError(f"{path}: not UTF-8: {exc}") from exc


def load_defaults(path: Path) -> tuple[DefaultPassword, ...]:
    """Load and validate ``default-passwords.yaml``."""
    try:
        raw = yaml.safe_load(_read(path))
    except yaml.YAMLError as exc:
        raise PasswordDictionaryError(f"{path}: invalid YAML: {exc}") from exc
    try:
        parsed = DefaultPasswordFile.model_validate(raw)
    except ValidationError as exc:
        raise PasswordDictionaryError(f"{path}: {exc}") from exc
    seen: set[tuple[str | None, str]] = set()
    for entry in parsed.entries:
        key = (entry.user, entry.password)
        if key in seen:
            raise PasswordDictionaryError(
                f"{path}: duplicate entry user={entry.user!r} password={entry.password!r}"
            )
        seen.add(key)
    return parsed.entries


def load_weak(path: Path) -> tuple[str, ...]:
    """One password per line; ``#`` starts a comment line (the provenance header)."""
    words: list[str] = []
    for number, line in enumerate(_read(path).splitlines(), start=1):
        if not line or line.startswith("#"):
            continue
        if line != line.strip():
            raise PasswordDictionaryError(f"{path} line {number}: leading or trailing blanks")
        words.append(line)
    if not words:
        raise PasswordDictionaryError(f"{path}: no passwords")
    return tuple(dict.fromkeys(words))


def load_dictionary(data_dir: Path | None = None) -> PasswordDictionary:
    """Load both dictionary files from ``data_dir`` (default: :func:`default_data_dir`)."""
    base = data_dir if data_dir is not None else default_data_dir()
    return PasswordDictionary(
        defaults=load_defaults(base / DEFAULTS_FILE),
        weak=load_weak(base / WEAK_FILE),
        weak_reference=f"ruleset/data/{WEAK_FILE}",
    )
