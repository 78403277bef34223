"""Samba: shares and global settings of ``/etc/samba/smb.conf`` and what it includes.

Parsed as Samba's params.c does: ``;``/``#`` comment lines, ``\\`` continuations, section
names and parameter names case-insensitive with spaces ignored, the last value wins,
synonyms (``writeable``/``writable``/``write ok`` are the inverse of ``read only``, ``public``
is ``guest ok``...), and parameters set in ``[global]`` are the defaults of every share.
``include =`` is followed inside the image (depth-bounded, loops stopped); an include with a
``%`` substitution, ``include = registry``, ``config backend = registry``, ``registry shares
= yes`` and ``config file =`` are recorded as reasons why shares may be hidden from us.

Follows: smb.conf(5) ("FILE FORMAT", "VARIABLE SUBSTITUTIONS", "REGISTRY-BASED
CONFIGURATION"), samba-tool/testparm synonym table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from imageaudit.facts.base import CollectContext, Collector
from imageaudit.facts.textlines import IncludeBudget, MalformedLine, logical_lines
from imageaudit.model import Source

SMB_CONF = "/etc/samba/smb.conf"
MAX_INCLUDE_DEPTH = 16
# smbd parses an included file again at every include line: a file that includes another
# many times, which includes another many times, is exponential. Past these totals we stop
# and mark the facts incomplete.
MAX_PARSES = 1024
MAX_LINES = 200_000

# normalised name (lower case, no spaces) -> (canonical name, inverted boolean)
_SYNONYMS: dict[str, tuple[str, bool]] = {
    "directory": ("path", False),
    "public": ("guest ok", False),
    "writeable": ("read only", True),
    "writable": ("read only", True),
    "writeok": ("read only", True),
    "browsable": ("browseable", False),
    "onlyguest": ("guest only", False),
    "allowhosts": ("hosts allow", False),
    "denyhosts": ("hosts deny", False),
    "minprotocol": ("server min protocol", False),
    "username": ("username", False),
    "user": ("username", False),
    "users": ("username", False),
    "printok": ("printable", False),
}
_KNOWN = (
    "path", "guest ok", "read only", "browseable", "guest only", "available", "printable",
    "valid users", "invalid users", "write list", "hosts allow", "hosts deny", "force user",
    "map to guest", "security", "server min protocol", "usershare allow guests", "interfaces",
    "bind interfaces only", "config backend", "registry shares", "guest account", "include",
    "config file",
)  # fmt: skip
_CANONICAL = {name.replace(" ", ""): name for name in _KNOWN}
_BOOL_TRUE = frozenset({"yes", "true", "1", "on"})
_BOOL_FALSE = frozenset({"no", "false", "0", "off"})


@dataclass(frozen=True, slots=True)
class SambaParam:
    source: Source
    name: str  # as written
    canonical: str  # synonym resolved, lower case
    value: str  # as written (before inverting a synonym)
    inverted: bool = False  # a synonym with the opposite sense (writeable -> read only)


@dataclass(frozen=True, slots=True)
class SambaShare:
    """A share (``[homes]`` and ``[printers]`` included) with its effective settings."""

    name: str
    source: Source
    path: str | None
    guest_ok: bool
    guest_only: bool
    writable: bool
    browseable: bool
    available: bool
    printable: bool
    valid_users: tuple[str, ...]
    invalid_users: tuple[str, ...]
    write_list: tuple[str, ...]
    hosts_allow: tuple[str, ...]
    hosts_deny: tuple[str, ...]
    force_user: str | None
    params: tuple[SambaParam, ...]


@dataclass(frozen=True, slots=True)
class SambaGlobals:
    map_to_guest: str
    security: str
    server_min_protocol: str
    usershare_allow_guests: bool
    interfaces: tuple[str, ...]
    bind_interfaces_only: bool
    config_backend: str
    registry_shares: bool
    guest_account: str
    params: tuple[SambaParam, ...]


@dataclass(frozen=True, slots=True)
class SambaInclude:
    source: Source
    target: str
    file: str | None  # the in-image file read, if any
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class SambaFacts:
    present: bool
    files: tuple[str, ...]
    globals: SambaGlobals
    shares: tuple[SambaShare, ...]
    includes: tuple[SambaInclude, ...]
    hidden_shares_possible: tuple[str, ...]  # why shares may exist that we cannot see
    malformed: tuple[MalformedLine, ...]


@dataclass
class _Parse:
    # An include fan-out is bounded, and each file is read once. ``None`` from its ``text``
    # when absent (smbd skips a missing include too); a dangling link or a file cut at the
    # cap marks the facts incomplete: what it holds may define shares.
    budget: IncludeBudget
    sections: dict[str, tuple[str, Source, list[SambaParam]]] = field(default_factory=dict)
    includes: list[SambaInclude] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    malformed: list[MalformedLine] = field(default_factory=list)
    hidden: list[str] = field(default_factory=list)


def _norm(name: str) -> str:
    return re.sub(r"\s+", "", name).lower()


def canonical_name(name: str) -> tuple[str, bool]:
    """Canonical parameter name and whether the synonym inverts a boolean."""
    key = _norm(name)
    if key in _SYNONYMS:
        return _SYNONYMS[key]
    if key in _CANONICAL:
        return _CANONICAL[key], False
    return " ".join(name.lower().split()), False


def _parse_file(p: _Parse, path: str, text: str, stack: list[str], section: str) -> str:
    p.files.append(path)
    lines = list(logical_lines(text, joiner=""))
    if not p.budget.parse(len(lines)):
        why = f"over {MAX_LINES} configuration lines in all, counting each inclusion"
        p.budget.stop(why, path)
        return section
    for lineno, raw in lines:
        if p.budget.stopped:
            return section
        line = raw.strip()
        src = Source(path, lineno)
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            end = line.find("]")
            if end < 0:
                p.malformed.append(MalformedLine(src, "section header without ']'", raw))
                continue
            name = line[1:end].strip()
            section = name.lower()
            p.sections.setdefault(section, (name, src, []))
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            p.malformed.append(MalformedLine(src, "no '=' in parameter line", raw))
            continue
        canon, inverted = canonical_name(name)
        param = SambaParam(src, name.strip(), canon, value.strip(), inverted)
        if canon == "include":
            section = _include(p, src, value.strip(), stack, section)
            continue
        p.sections.setdefault(section, (section, src, []))[2].append(param)
    return section


def _include(p: _Parse, src: Source, target: str, stack: list[str], section: str) -> str:
    if target.lower() == "registry":
        p.includes.append(SambaInclude(src, target, None, "registry configuration"))
        p.hidden.append(f"include = registry ({src})")
        return section
    if "%" in target:
        p.includes.append(SambaInclude(src, target, None, "depends on % substitution"))
        p.hidden.append(f"include with a substitution cannot be resolved: {target} ({src})")
        return section
    if not target.startswith("/"):
        p.includes.append(SambaInclude(src, target, None, "relative path"))
        p.hidden.append(f"include of a relative path: {target} ({src})")
        return section
    problem = None
    if target in stack:
        problem = "include loop"
    elif len(stack) >= MAX_INCLUDE_DEPTH:
        problem = f"include depth over {MAX_INCLUDE_DEPTH}"
    elif p.budget.full():
        p.budget.stop(f"over {MAX_PARSES} file inclusions in all ({src})", target)
        problem = f"over {MAX_PARSES} inclusions"
    text = None if problem else p.budget.text(target)
    if text is None:
        # Samba skips a missing include silently; we record it.
        p.includes.append(SambaInclude(src, target, None, problem or "file absent"))
        return section
    p.includes.append(SambaInclude(src, target, target))
    return _parse_file(p, target, text, [*stack, target], section)


def _last(params: list[SambaParam], name: str) -> SambaParam | None:
    found = [q for q in params if q.canonical == name]
    return found[-1] if found else None


def _bool(param: SambaParam | None, default: bool, malformed: list[MalformedLine]) -> bool:
    if param is None:
        return default
    low = param.value.lower()
    if low in _BOOL_TRUE:
        value = True
    elif low in _BOOL_FALSE:
        value = False
    else:
        malformed.append(MalformedLine(param.source, f"{param.name!r} is not a boolean"))
        return default
    return not value if param.inverted else value


def _list(param: SambaParam | None) -> tuple[str, ...]:
    if param is None:
        return ()
    return tuple(w for w in re.split(r"[,\s]+", param.value) if w)


def _share(
    name: str, src: Source, own: list[SambaParam], glob: list[SambaParam], bad: list[MalformedLine]
) -> SambaShare:
    def get(key: str) -> SambaParam | None:
        return _last(own, key) or _last(glob, key)

    path = get("path")
    force = get("force user")
    return SambaShare(
        name=name,
        source=src,
        path=path.value if path else None,
        guest_ok=_bool(get("guest ok"), False, bad),
        guest_only=_bool(get("guest only"), False, bad),
        writable=not _bool(get("read only"), True, bad),
        browseable=_bool(get("browseable"), True, bad),
        available=_bool(get("available"), True, bad),
        printable=_bool(get("printable"), name.lower() == "printers", bad),
        valid_users=_list(get("valid users")),
        invalid_users=_list(get("invalid users")),
        write_list=_list(get("write list")),
        hosts_allow=_list(get("hosts allow")),
        hosts_deny=_list(get("hosts deny")),
        force_user=force.value if force else None,
        params=tuple(own),
    )


def _globals(params: list[SambaParam], bad: list[MalformedLine]) -> SambaGlobals:
    def val(key: str, default: str) -> str:
        q = _last(params, key)
        return q.value if q else default

    return SambaGlobals(
        map_to_guest=val("map to guest", "Never"),
        security=val("security", "user"),
        server_min_protocol=val("server min protocol", "SMB2_02"),
        usershare_allow_guests=_bool(_last(params, "usershare allow guests"), False, bad),
        interfaces=_list(_last(params, "interfaces")),
        bind_interfaces_only=_bool(_last(params, "bind interfaces only"), False, bad),
        config_backend=val("config backend", "file"),
        registry_shares=_bool(_last(params, "registry shares"), False, bad),
        guest_account=val("guest account", "nobody"),
        params=tuple(params),
    )


def collect(ctx: CollectContext) -> SambaFacts:
    """Read the image's smb.conf (and includes) into shares and global settings."""

    def stopped(why: str, path: str) -> None:
        ctx.incomplete(f"the Samba configuration was not read whole: {why}", path)

    p = _Parse(budget=IncludeBudget(ctx.read_text, MAX_PARSES, MAX_LINES, stopped))
    text = ctx.read_text(SMB_CONF)
    if text is not None:
        _parse_file(p, SMB_CONF, text, [SMB_CONF], "global")
    _, _, global_params = p.sections.pop("global", ("global", Source(SMB_CONF), []))
    glob = _globals(global_params, p.malformed)
    if glob.config_backend.lower() == "registry":
        p.hidden.append("config backend = registry: the configuration lives in the registry")
    if glob.registry_shares:
        p.hidden.append("registry shares = yes: shares may be defined in the registry")
    config_file = _last(global_params, "config file")
    if config_file is not None:
        p.hidden.append(f"config file = {config_file.value} ({config_file.source})")
    shares = tuple(
        _share(name, src, params, list(global_params), p.malformed)
        for _, (name, src, params) in sorted(p.sections.items())
    )
    return SambaFacts(
        present=text is not None,
        files=tuple(p.files),
        globals=glob,
        shares=shares,
        includes=tuple(p.includes),
        hidden_shares_possible=tuple(p.hidden),
        malformed=tuple(dict.fromkeys(p.malformed)),
    )


COLLECTOR = Collector(name="samba", patterns=(SMB_CONF, "/etc/samba/*.conf"), collect=collect)
