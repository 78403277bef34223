"""Parsers the ``os`` collector uses: shell-style assignments and ELF headers.

Specs: os-release(5) (quoting: double or single quotes, backslash escapes for ``$``, ``"``,
``\\``, `````), elf(5) (``EI_CLASS`` byte 4, ``EI_DATA`` byte 5, ``e_machine`` at 18).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from imageaudit.facts.conftext import universal_lines

ELF_CANDIDATES = ("/bin/sh", "/usr/bin/env")

_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# e_machine -> (name for 32-bit, name for 64-bit); little-endian variants below.
_MACHINES: dict[int, tuple[str, str]] = {
    2: ("sparc", "sparc64"),
    3: ("i386", "i386"),
    4: ("m68k", "m68k"),
    8: ("mips", "mips64"),
    15: ("hppa", "hppa64"),
    20: ("ppc", "ppc"),
    21: ("ppc64", "ppc64"),
    22: ("s390", "s390x"),
    40: ("arm", "arm"),
    42: ("sh4", "sh4"),
    43: ("sparc64", "sparc64"),
    50: ("ia64", "ia64"),
    62: ("x86_64", "x86_64"),
    183: ("aarch64", "aarch64"),
    243: ("riscv32", "riscv64"),
    258: ("loongarch32", "loongarch64"),
    0x9026: ("alpha", "alpha"),
}
_LITTLE_ENDIAN_NAMES = {"mips": "mipsel", "mips64": "mips64el", "ppc64": "ppc64le"}

# dpkg and apk architecture names -> the kernel's (uname -m style) names used above.
_CONFIG_ARCH = {
    "amd64": "x86_64",
    "arm64": "aarch64",
    "armhf": "arm",
    "armel": "arm",
    "armv7": "arm",
    "x86": "i386",
    "i686": "i386",
    "ppc64el": "ppc64le",
    "powerpc": "ppc",
}


def elf_architecture(header: bytes) -> str | None:
    """Architecture named by an ELF header (first 20+ bytes), ``None`` if not ELF/unknown."""
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    elf_class, elf_data = header[4], header[5]
    if elf_class not in (1, 2) or elf_data not in (1, 2):
        return None
    machine = int.from_bytes(header[18:20], "little" if elf_data == 1 else "big")
    names = _MACHINES.get(machine)
    if names is None:
        return None
    name = names[elf_class - 1]
    if elf_data == 1:
        name = _LITTLE_ENDIAN_NAMES.get(name, name)
    return name


def arch_from_config(path: str, value: str) -> str:
    """Normalise an architecture from apk/dpkg/rpm configuration to the ELF-derived names."""
    word = value.strip().split()[0] if value.strip() else ""
    if path.endswith("/rpm/platform"):
        word = word.split("-")[0]
    return _CONFIG_ARCH.get(word, word)


def _unquote(raw: str) -> tuple[str, str | None]:
    """(value, problem) of one shell-style right-hand side."""
    out: list[str] = []
    i = 0
    quote: str | None = None
    while i < len(raw):
        char = raw[i]
        if quote == "'":
            if char == "'":
                quote = None
            else:
                out.append(char)
        elif char == "\\" and i + 1 < len(raw) and (quote is None or raw[i + 1] in '$"\\`'):
            i += 1
            out.append(raw[i])
        elif char == '"' and quote in (None, '"'):
            quote = None if quote else '"'
        elif char == "'" and quote is None:
            quote = "'"
        elif quote is None and char in " \t" and raw[i:].strip().startswith("#"):
            break
        else:
            out.append(char)
        i += 1
    return "".join(out), ("unterminated quote" if quote else None)


def parse_assignments(text: str) -> Iterator[tuple[int, str | None, str, str | None, str]]:
    """(line, key, value, problem, raw line) for every non-blank, non-comment line.

    A line that is not ``KEY=value`` has key ``None`` and a problem; a value with an
    unterminated quote keeps what was read, with the problem.
    """
    # systemd's env-file parser ends a line at "\n" or "\r"; so does Python's text mode.
    for number, line in enumerate(universal_lines(text), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, raw = stripped.partition("=")
        if not sep or not _KEY_RE.match(key):
            yield number, None, "", "not a KEY=value assignment", line
            continue
        value, problem = _unquote(raw)
        yield number, key, value, problem, line
