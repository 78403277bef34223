"""sshd: the effective server configuration, computed the way sshd computes it.

Keywords are case-insensitive and the first value wins (multi-valued keywords accumulate).
``Include`` arguments are resolved against ``/etc/ssh`` when relative, globbed over the
*image* tree, read in sorted order, depth ≤ 16. What makes sshd exit (an include loop, which
it only stops at its depth limit; deeper nesting; an included file it cannot open), and an
Include fan-out past :data:`MAX_PARSES` inclusions or :data:`MAX_LINES` lines, stops the
reading and marks the facts incomplete, so the rules give "could not evaluate". Lines end at
``\\n`` only, as sshd reads them (:func:`sshd_lines`). ``Match``
blocks are kept as conditional overrides; an ``Include`` inside a block applies to it, and a
``Match`` inside an included file ends with that file. Options never set take the built-in
default of the OpenSSH version found in the sshd binary (or of OpenSSH ≥ 7.0, recorded).

Follows: sshd_config(5) ("Include", "Match", "first obtained value"), sshd(8), OpenSSH
servconf.c behaviour for ``Keyword=value`` and quoting (argv_split).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from imageaudit.facts.base import CollectContext, Collector
from imageaudit.facts.sshd_defaults import MULTI_VALUED, canonical, defaults_for
from imageaudit.facts.textlines import IncludeBudget, MalformedLine, glibc_lines
from imageaudit.model import Source

CONFIG = "/etc/ssh/sshd_config"
SSH_DIR = "/etc/ssh"
MAX_DEPTH = 16
MAX_MALFORMED_PER_FILE = 200
# sshd re-reads an included file at every inclusion; past these totals we stop and say so.
MAX_PARSES = 1024
MAX_LINES = 200_000
BINARY_READ_LIMIT = 8 * 1024 * 1024
SSHD_BINARIES = ("/usr/sbin/sshd", "/usr/bin/sshd", "/sbin/sshd", "/usr/local/sbin/sshd")
_VERSION_RE = re.compile(rb"OpenSSH_(\d{1,3})\.(\d{1,3})(p\d{1,3})?(?![\d.*,])")
# servconf.c strdelim: the keyword ends at space, tab, CR or "="; then one "=" at most.
_KEYWORD_RE = re.compile(r"[ \t\r]*([^ \t\r\"=]+)[ \t\r]*(?:=[ \t\r]*)?(.*)$", re.S)


@dataclass(frozen=True, slots=True)
class SshdDirective:
    source: Source
    keyword: str  # canonical spelling
    args: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SshdOption:
    """An effective option: its value, and where it came from (``default`` if nowhere)."""

    keyword: str
    value: str
    values: tuple[str, ...]  # every value of a multi-valued keyword, else (value,)
    sources: tuple[Source, ...]
    default: bool


@dataclass(frozen=True, slots=True)
class SshdMatchBlock:
    source: Source
    criteria: tuple[tuple[str, str], ...]  # (criterion lower-cased, pattern list)
    directives: tuple[SshdDirective, ...]

    def first(self, keyword: str) -> SshdDirective | None:
        """The directive that wins inside this block for ``keyword``."""
        return next((d for d in self.directives if d.keyword.lower() == keyword.lower()), None)


@dataclass(frozen=True, slots=True)
class SshdInclude:
    source: Source
    pattern: str
    files: tuple[str, ...]
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class SshdFacts:
    binary: str | None
    version: str | None  # "OpenSSH_9.2p1" from the binary's strings
    config_present: bool
    defaults_note: str
    options: tuple[SshdOption, ...]
    match_blocks: tuple[SshdMatchBlock, ...]
    includes: tuple[SshdInclude, ...]
    files: tuple[str, ...]
    malformed: tuple[MalformedLine, ...]

    @property
    def installed(self) -> bool:
        return self.binary is not None or self.config_present

    def option(self, keyword: str) -> SshdOption | None:
        """The effective global option (case-insensitive keyword)."""
        low = keyword.lower()
        return next((o for o in self.options if o.keyword.lower() == low), None)


@dataclass
class _Parse:
    ctx: CollectContext
    # An Include fan-out is bounded, and each file is read once.
    budget: IncludeBudget
    global_: list[SshdDirective] = field(default_factory=list)
    blocks: list[tuple[Source, tuple[tuple[str, str], ...], list[SshdDirective]]] = field(
        default_factory=list
    )
    includes: list[SshdInclude] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    malformed: list[MalformedLine] = field(default_factory=list)
    # Each glob costs once, however often it is included.
    globs: dict[str, list[str]] = field(default_factory=dict)


def argv_split(text: str) -> list[str] | None:
    """Split like OpenSSH's ``argv_split``: quotes, backslash escapes, ``#`` comments.

    ``None`` when a quote is left open.
    """
    args: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] in " \t":  # misc.c argv_split: only space and tab separate
            i += 1
            continue
        if text[i] == "#":
            break
        arg: list[str] = []
        quote = ""
        while i < n:
            c = text[i]
            if not quote and c in " \t":
                break
            if (
                c == "\\"
                and i + 1 < n
                and (text[i + 1] in "\\\"'" or (not quote and text[i + 1] == " "))
            ):
                arg.append(text[i + 1])
                i += 2
                continue
            if not quote and c in "\"'":
                quote = c
            elif quote and c == quote:
                quote = ""
            else:
                arg.append(c)
            i += 1
        if quote:
            return None
        args.append("".join(arg))
    return args


def sshd_lines(text: str) -> list[tuple[int, str]]:
    """``(line number, text)`` of a config file as sshd's ``load_server_config`` hands it on.

    Lines end at ``\\n`` only (``\\r``, ``\\v``, ``\\f`` stay inside the line); leading
    spaces, tabs and ``\\r`` are dropped; a NUL ends what sshd keeps of a line, newline
    included, so the next line is joined to it (sshd copies each line with ``strlen``).
    """
    out: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for lineno, raw in enumerate(glibc_lines(text), 1):
        line = raw.lstrip(" \t\r")
        nul = line.find("\0")
        if pending is not None:
            start, head = pending
            lineno, line, pending = start, head + line, None
        if nul >= 0:
            pending = (lineno, line[: line.find("\0")])
            continue
        out.append((lineno, line))
    if pending is not None:
        out.append(pending)
    return out


def _parse_file(p: _Parse, path: str, text: str, stack: list[str], block: int | None) -> None:
    p.files.append(path)
    lines = sshd_lines(text)
    if not p.budget.parse(len(lines)):
        why = f"over {MAX_LINES} configuration lines in all, counting each inclusion"
        p.budget.stop(why, path)
        return
    bad = 0
    for lineno, line in lines:
        if p.budget.stopped:
            return
        source = Source(path, lineno)
        m = _KEYWORD_RE.match(line.rstrip(" \t\r\f"))
        if m is None or not m.group(1) or m.group(1).startswith("#"):
            continue
        problem: str | None = None
        keyword, reason = canonical(m.group(1))
        args = argv_split(m.group(2))
        if args is None:
            problem = "invalid quotes"
        elif not args:
            problem = f"no argument after keyword {m.group(1)!r}"
        elif keyword is None:
            problem = reason
        if problem is not None or keyword is None or args is None:
            bad += 1
            if bad <= MAX_MALFORMED_PER_FILE:
                p.malformed.append(MalformedLine(source, problem or "unparsed", line[:200]))
            continue
        if keyword == "Match":
            block = _start_match(p, source, args)
        elif keyword == "Include":
            for pattern in args:
                _include(p, source, pattern, stack, block)
        else:
            directive = SshdDirective(source, keyword, tuple(args))
            (p.global_ if block is None else p.blocks[block][2]).append(directive)
    if bad > MAX_MALFORMED_PER_FILE:
        p.malformed.append(
            MalformedLine(Source(path), f"{bad - MAX_MALFORMED_PER_FILE} more malformed lines")
        )


def _start_match(p: _Parse, source: Source, args: list[str]) -> int:
    criteria: list[tuple[str, str]] = []
    i = 0
    while i < len(args):
        name = args[i].lower()
        if name in ("all", "invalid-user"):
            criteria.append((name, ""))
            i += 1
        elif i + 1 < len(args):
            criteria.append((name, args[i + 1]))
            i += 2
        else:
            p.malformed.append(MalformedLine(source, f"Match criterion {args[i]!r} without value"))
            criteria.append((name, ""))
            i += 1
    p.blocks.append((source, tuple(criteria), []))
    return len(p.blocks) - 1


def _glob(p: _Parse, pattern: str) -> list[str]:
    if pattern not in p.globs:
        p.globs[pattern] = p.ctx.fs.glob(pattern)
    return p.globs[pattern]


def _include(p: _Parse, source: Source, pattern: str, stack: list[str], block: int | None) -> None:
    full = pattern if pattern.startswith("/") else f"{SSH_DIR}/{pattern}"
    if len(stack) > MAX_DEPTH:
        problem = f"too many recursive includes (over {MAX_DEPTH})"
        p.includes.append(SshdInclude(source, pattern, (), problem))
        p.budget.stop(f"{problem} at {source}; sshd refuses to start", source.path)
        return
    files: list[str] = []
    problems: list[str] = []
    for path in _glob(p, full):
        if p.budget.stopped:
            break
        if path in stack:
            # sshd has no loop check: it recurses until its depth limit and exits.
            problems.append(f"include loop at {path}")
            why = f"include loop at {path} ({source}); sshd refuses to start"
            p.budget.stop(why, source.path)
            break
        if p.budget.full():
            problems.append(f"over {MAX_PARSES} inclusions")
            p.budget.stop(f"over {MAX_PARSES} file inclusions in all", source.path)
            break
        text = p.budget.text(path)
        if text is None:
            # A glob match that cannot be opened (dangling link, loop): sshd exits.
            problems.append(f"{path} could not be read")
            p.budget.stop(f"{path} could not be read ({source})", path)
            break
        files.append(path)
        # The included file starts in the includer's Match context; its own Match ends with it.
        _parse_file(p, path, text, [*stack, path], block)
    if not files and not problems:
        problems.append("no match")
    p.includes.append(SshdInclude(source, pattern, tuple(files), "; ".join(problems) or None))


def _effective(directives: list[SshdDirective], defaults: dict[str, str]) -> tuple[SshdOption, ...]:
    found: dict[str, tuple[str, list[str], list[Source]]] = {}
    for d in directives:
        name = d.keyword
        value = " ".join(d.args)
        if name in MULTI_VALUED:
            entry = found.setdefault(name, (value, [], []))
            entry[1].extend(d.args if name != "Subsystem" else [value])
            entry[2].append(d.source)
        elif name not in found:
            found[name] = (value, list(d.args), [d.source])
    options = [
        SshdOption(
            keyword=name,
            value=" ".join(vals) if name in MULTI_VALUED else value,
            values=tuple(vals) if name in MULTI_VALUED else (value,),
            sources=tuple(srcs),
            default=False,
        )
        for name, (value, vals, srcs) in found.items()
    ]
    for name, value in defaults.items():
        if name not in found:
            vals = tuple(value.split()) if name in MULTI_VALUED else (value,)
            options.append(SshdOption(name, value, vals, (), True))
    return tuple(sorted(options, key=lambda o: o.keyword.lower()))


def _version(ctx: CollectContext) -> tuple[str | None, str | None, tuple[int, int] | None]:
    for path in SSHD_BINARIES:
        if not ctx.fs.is_file(path):
            continue
        result = ctx.read(path, BINARY_READ_LIMIT)
        found = [] if result is None else list(_VERSION_RE.finditer(result.data))
        if not found:
            return path, None, None
        best = max(found, key=lambda m: (int(m.group(1)), int(m.group(2))))
        return path, best.group(0).decode(), (int(best.group(1)), int(best.group(2)))
    return None, None, None


def collect(ctx: CollectContext) -> SshdFacts:
    """Compute sshd's effective configuration from the image's ``/etc/ssh/sshd_config``."""
    binary, version, numeric = _version(ctx)
    defaults, note = defaults_for(numeric)
    if binary is not None and numeric is None:
        note = f"OpenSSH >= 7.0 defaults assumed (no version string in {binary})"

    def stopped(why: str, path: str) -> None:
        # sshd would exit here (or we stop reading): the rest of the configuration is unknown.
        ctx.incomplete(f"the sshd configuration was not read whole: {why}", path)

    p = _Parse(ctx=ctx, budget=IncludeBudget(ctx.read_text, MAX_PARSES, MAX_LINES, stopped))
    text = ctx.read_text(CONFIG)
    if text is not None:
        _parse_file(p, CONFIG, text, [CONFIG], None)
    blocks = tuple(SshdMatchBlock(src, crit, tuple(dirs)) for src, crit, dirs in p.blocks)
    return SshdFacts(
        binary=binary,
        version=version,
        config_present=text is not None,
        defaults_note=note,
        options=_effective(p.global_, defaults),
        match_blocks=blocks,
        includes=tuple(p.includes),
        files=tuple(p.files),
        malformed=tuple(p.malformed),
    )


COLLECTOR = Collector(
    name="sshd",
    patterns=(CONFIG, "/etc/ssh/sshd_config.d/*", *SSHD_BINARIES),
    collect=collect,
)
