"""``pam_unix`` lines of ``/etc/pam.d/*`` and whether they carry ``nullok``.

Follows: pam.d(5) (service file syntax, ``-type`` lines, ``[value=action]`` controls,
backslash continuations) and pam_unix(8) (``nullok``, Debian's former ``nullok_secure``).
"""

from __future__ import annotations

from dataclasses import dataclass

from imageaudit.facts.textlines import MalformedLine, logical_lines
from imageaudit.model import Source

PAM_TYPES = frozenset({"auth", "account", "password", "session"})


@dataclass(frozen=True, slots=True)
class PamUnixLine:
    """A ``pam_unix`` line of one PAM service file."""

    source: Source
    service: str
    type: str
    control: str
    module: str
    arguments: tuple[str, ...]
    nullok: bool  # "nullok" or "nullok_secure" among the arguments


def _tokens(line: str) -> list[str]:
    """Split on whitespace; ``[...]`` (a control or an argument) is one token."""
    out: list[str] = []
    i = 0
    while i < len(line):
        if line[i].isspace():
            i += 1
            continue
        if line[i] == "[":
            end = line.find("]", i)
            end = len(line) if end < 0 else end + 1
        else:
            end = i
            while end < len(line) and not line[end].isspace():
                end += 1
        out.append(line[i:end])
        i = end
    return out


def parse_pam_file(path: str, text: str, malformed: list[MalformedLine]) -> list[PamUnixLine]:
    """``pam_unix`` lines of one service file; broken lines go to ``malformed``."""
    service = path.rsplit("/", 1)[-1]
    out: list[PamUnixLine] = []
    for lineno, raw in logical_lines(text):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        tokens = _tokens(line)
        kind = tokens[0].lstrip("-").lower()
        if kind == "@include":
            continue
        if kind not in PAM_TYPES or len(tokens) < 3:
            malformed.append(MalformedLine(Source(path, lineno), "not a PAM rule line", raw))
            continue
        module = tokens[2]
        if module.rsplit("/", 1)[-1] not in ("pam_unix.so", "pam_unix"):
            continue
        args = tuple(tokens[3:])
        out.append(
            PamUnixLine(
                source=Source(path, lineno),
                service=service,
                type=tokens[0],
                control=tokens[1],
                module=module,
                arguments=args,
                nullok=any(a in ("nullok", "nullok_secure") for a in args),
            )
        )
    return out
