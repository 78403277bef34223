"""Check types over persistence and hijacking (MITRE ATT&CK for Linux): commands of cron, at,
systemd, rc scripts and shell profiles shaped like a dropper, the dynamic linker's preload and
search path, backdoored authorized_keys, PAM stacks and modules, kernel modules loaded at boot,
setuid helpers in odd places.

The dropper shapes are data: ``ruleset/data/persistence-shapes.yaml``, validated at load (a
repeated group or a back-reference is refused, so that every regex stays linear in the line).
"""

from __future__ import annotations

import functools
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from imageaudit.checks import MissingFact, MissingPolicy, check_type
from imageaudit.checks.ownership import _aliases, owned_index
from imageaudit.facts.masking import mask_credentials
from imageaudit.facts.persistence import PersistenceFacts
from imageaudit.facts.persistence_files import PersistenceEntry
from imageaudit.findings import CheckResult, Rule, code
from imageaudit.model import Evidence, Severity, Source, Status

SHAPES_FILE = "persistence-shapes.yaml"
MAX_SHAPES_BYTES = 1 << 20
EXCERPT = 120
_UNSAFE = re.compile(r"\)[*+{]|\\[1-9]|\(\?P=")
_SECRETISH = re.compile(r"[A-Za-z0-9+/=_\-]{32,}")
SYSTEM_LIB_DIRS = ("/lib", "/lib64", "/lib32", "/libx32", "/usr/lib", "/usr/lib64", "/usr/lib32",
                   "/usr/libx32")
SYSTEM_EXEC_DIRS = ("/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/libexec", *SYSTEM_LIB_DIRS)
TEMP_DIRS = ("/tmp", "/var/tmp", "/dev/shm")
HOME_DIRS = ("/home", "/root")
MODULE_DIRS = ("/lib/modules", "/usr/lib/modules", "/var/lib/dkms", "/usr/src", "/usr/lib/debug")
SHELLS = re.compile(
    r"(sh|bash|dash|zsh|ksh|ksh93|mksh|pdksh|ash|csh|tcsh|fish|busybox|python[0-9.]*|perl[0-9.]*"
    r"|ruby[0-9.]*|php[0-9.]*|node|nodejs|lua[0-9.]*|tclsh[0-9.]*|env|expect)"
)
WHAT = {
    "cron": "cron entry", "at": "at job", "systemd": "systemd unit", "rc": "rc script",
    "profile": "shell start-up file", "environment": "environment file",
    "modprobe": "modprobe directive", "modules": "module list",
}


class PersistenceDataError(ValueError):
    """The shapes file is missing, unreadable or does not match its schema."""


class ShapeModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: StrictStr = Field(pattern=r"^[a-z0-9_]+$")
    description: StrictStr = Field(min_length=1)
    severity: Literal["critical", "high", "moderate", "low"]
    reference: StrictStr = Field(pattern=r"^https://")
    ignore_case: bool = False
    all: tuple[StrictStr, ...] = Field(min_length=1)


class ShapesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    shapes: tuple[ShapeModel, ...] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class Shape:
    id: str
    description: str
    severity: Severity
    reference: str
    patterns: tuple[re.Pattern[str], ...]

    def matches(self, text: str) -> bool:
        return all(p.search(text) for p in self.patterns)


def load_shapes(path: Path) -> tuple[Shape, ...]:
    """Load and validate a shapes file; a bad one is a :class:`PersistenceDataError`."""
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_SHAPES_BYTES + 1)
    except OSError as exc:
        raise PersistenceDataError(f"{path}: cannot read: {exc.strerror}") from exc
    if len(data) > MAX_SHAPES_BYTES:
        raise PersistenceDataError(f"{path}: larger than {MAX_SHAPES_BYTES} bytes")
    try:
        parsed = ShapesFile.model_validate(yaml.safe_load(data.decode("utf-8")))
    except (UnicodeDecodeError, yaml.YAMLError, ValidationError) as exc:
        raise PersistenceDataError(f"{path}: {exc}") from exc
    shapes: list[Shape] = []
    for s in parsed.shapes:
        if any(x.id == s.id for x in shapes):
            raise PersistenceDataError(f"{path}: duplicate shape {s.id!r}")
        patterns = []
        for text in s.all:
            if _UNSAFE.search(text):
                raise PersistenceDataError(
                    f"{path}: shape {s.id}: repeated group or back-reference in {text!r}"
                )
            try:
                patterns.append(re.compile(text, re.IGNORECASE if s.ignore_case else 0))
            except re.error as exc:
                raise PersistenceDataError(f"{path}: shape {s.id}: {exc}") from exc
        shapes.append(Shape(s.id, s.description, Severity(s.severity), s.reference,
                            tuple(patterns)))
    return tuple(shapes)


@functools.cache
def default_shapes() -> tuple[Shape, ...]:
    return load_shapes(Path(__file__).resolve().parents[1] / "ruleset" / "data" / SHAPES_FILE)


def matching_shape(text: str, only: list[str] | None = None) -> Shape | None:
    """The first shape ``text`` has (among ``only`` when given), ``None`` for none."""
    for shape in default_shapes():
        if (not only or shape.id in only) and shape.matches(text):
            return shape
    return None


def excerpt(text: str) -> str:
    """A short, printable excerpt of a command with long tokens (keys, payloads) masked."""
    text = mask_credentials(text)
    text = _SECRETISH.sub(lambda m: m.group(0)[:6] + "…", text)
    return text if len(text) <= EXCERPT else text[: EXCERPT - 1] + "…"


def _under(path: str, tops: tuple[str, ...]) -> bool:
    return any(path == t or path.startswith(t + "/") for t in tops)


def _hidden(path: str) -> bool:
    return any(p.startswith(".") and p not in (".", "..") for p in path.split("/")[:-1])


def _where(source: Source) -> str:
    return f"{source.path} line {source.line}" if source.line else source.path


def _fail(
    message: str, resource: str, source: Source, observed: str, expected: str,
    severity: Severity | None = None, rule: Rule | None = None,
) -> CheckResult:
    if severity is not None and rule is not None and severity.rank <= rule.severity.rank:
        severity = None  # never lowered below the rule's own severity by a shape
    return CheckResult(
        Status.FAIL, message, resource=resource,
        evidence=Evidence(path=source.path, line=source.line, observed=observed,
                          expected=expected),
        severity=severity,
    )


def persistence_facts(facts: Any) -> PersistenceFacts:
    result: PersistenceFacts = facts.persistence
    return result


def shape_result(e: PersistenceEntry, shape: Shape, what: str, rule: Rule) -> CheckResult:
    return _fail(
        f"{what} {code(e.source.path)} line {e.source.line} {shape.description} "
        f"({code(excerpt(e.command or e.text))})",
        f"{e.source.path}:{e.source.line}", e.source, f"{shape.id}: {excerpt(e.text)}",
        "no download, decoded payload, reverse shell or program run from a temporary or "
        "hidden directory", shape.severity, rule,
    )


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CommandsParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mechanisms: list[str] = Field(
        description="places to judge: cron, at, systemd, rc, profile, environment, modprobe"
    )
    shapes: list[str] = Field(
        default_factory=list, description="shape ids of persistence-shapes.yaml; all when empty"
    )
    writable: bool = Field(
        default=True,
        description="also fail files of these places that others than root (or the account "
        "they belong to) may change",
    )


@check_type(
    "persistence_commands", params_model=CommandsParams, missing=MissingPolicy.ERROR,
    needs=("persistence",),
)
def persistence_commands(facts: Any, params: CommandsParams, rule: Rule) -> list[CheckResult]:
    """Fails once per line of the chosen places shaped like a dropper, and per such file
    others may write.

    The shapes (``ruleset/data/persistence-shapes.yaml``): a download piped into a shell or
    made executable, a decoded payload run by a shell or an interpreter, reverse shells
    (``/dev/tcp``, ``nc -e``, ``socat exec:``, fifo to netcat, interpreter sockets), a
    program run from ``/tmp``, ``/var/tmp``, ``/dev/shm`` or a hidden directory, a miner, the
    shell history switched off, ``chattr +i``/``setenforce 0``. A shape's own severity
    (``critical`` for downloads, payloads, reverse shells, miners) raises the rule's. With
    ``writable``, a file that is world-writable, or owned by another user than root (or than
    the account whose crontab or home it is), fails: anyone who can write it runs commands
    as its runner.

    Missing fact: the ``persistence`` facts could not be collected or are incomplete (a file
    or a line cut at its cap): ERROR by default.
    """
    pf = persistence_facts(facts)
    results: list[CheckResult] = []
    for e in pf.entries:
        if e.mechanism not in params.mechanisms:
            continue
        shape = matching_shape(e.command or e.text, params.shapes)
        if shape is not None:
            results.append(shape_result(e, shape, WHAT.get(e.mechanism, e.mechanism), rule))
    if not params.writable:
        return results
    for f in pf.files:
        if f.mechanism not in params.mechanisms:
            continue
        account_uid = _account_uid(facts, f.account)
        if f.mode & 0o002:
            why = f"world-writable (mode {f.mode:04o})"
        elif f.uid != 0 and f.uid != account_uid:
            why = f"owned by uid {f.uid}, not root"
        else:
            continue
        results.append(_fail(
            f"{WHAT.get(f.mechanism, f.mechanism)} {code(f.path)} is {why}: whoever can "
            "change it runs commands as the account that runs it",
            f.path, Source(f.path), why, "owned by root (or its account), not world-writable",
        ))
    return results


def _account_uid(facts: Any, account: str | None) -> int | None:
    if account is None or facts.accounts is None:
        return None
    return next((p.uid for p in facts.accounts.passwd if p.name == account), None)


_LD_VAR = re.compile(
    r"\b(LD_PRELOAD|LD_AUDIT|LD_LIBRARY_PATH)[ \t]*=[ \t]*(\"[^\"]*\"|'[^']*'|[^\s;]*)"
)


def _odd_dir(path: str) -> str | None:
    """Why a library location is not a system one an attacker cannot write, or ``None``."""
    if not path.startswith("/"):
        return "a relative path (resolved against the working directory)"
    if _under(path, TEMP_DIRS):
        return "a world-writable temporary directory"
    if _under(path, HOME_DIRS):
        return "a home directory"
    if _hidden(path + "/"):
        return "a hidden directory"
    return None


def _ld_env(e: PersistenceEntry) -> list[tuple[str, str, str]]:
    """``(variable, item, why)`` for each odd library or directory an assignment names."""
    out = []
    for m in _LD_VAR.finditer(e.text):
        var, value = m.group(1), m.group(2).strip("\"'")
        for item in re.split(r"[\s:]+", value) if value else []:
            if not item or item.startswith("$"):
                continue
            if var == "LD_LIBRARY_PATH":
                why = _odd_dir(item)
            else:
                why = _odd_dir(posixpath.dirname(item)) if "/" in item else None
                if why is None and "/" in item and not _under(item, SYSTEM_LIB_DIRS):
                    why = "outside the system library directories"
            if why:
                out.append((var, item, why))
    return out


@check_type(
    "ld_preload_hijack", params_model=NoParams, missing=MissingPolicy.ERROR,
    needs=("persistence", "packages"),
)
def ld_preload_hijack(facts: Any, params: NoParams, rule: Rule) -> list[CheckResult]:
    """Fails for each way the dynamic linker is made to load a library it would not.

    ``/etc/ld.so.preload`` naming a library outside the system library directories, in a
    hidden, temporary or home directory, world-writable, or owned by no package (when the
    image has a package database); ``LD_PRELOAD``/``LD_AUDIT`` set (in ``/etc/environment``,
    shell profiles, rc scripts, cron, systemd ``Environment=``) to such a library, or
    ``LD_LIBRARY_PATH`` to a relative, temporary, home or hidden directory; a directory of
    ``/etc/ld.so.conf`` (and its includes) that is relative, temporary, in a home, hidden or
    world-writable.

    Missing fact: the ``persistence`` or ``packages`` facts could not be collected, are
    incomplete, or a package's file list was cut when ownership decides: ERROR by default.
    """
    pf = persistence_facts(facts)
    results: list[CheckResult] = []
    owned: set[str] | None = None
    for e in pf.entries:
        where = _where(e.source)
        if e.mechanism == "ld_preload":
            lib = e.text
            state = pf.path(lib)
            st = state.target if state else None
            why = _odd_dir(posixpath.dirname(lib)) if lib.startswith("/") else _odd_dir(lib)
            if why is None and not _under(lib, SYSTEM_LIB_DIRS):
                why = "outside the system library directories"
            if why is None and st is not None and st.mode & 0o002:
                why = "world-writable"
            if why is None and st is not None and any(db.used for db in facts.packages.databases):
                if owned is None:
                    owned, gaps = owned_index(facts.packages)
                    if gaps and not any(a in owned for a in _aliases(lib)):
                        raise MissingFact("packages", f"{gaps[0]}; cannot tell who owns {lib}")
                if not any(a in owned for a in _aliases(lib)):
                    why = "owned by no installed package"
            if why is not None:
                results.append(_fail(
                    f"{code(e.source.path)} line {e.source.line} preloads {code(lib)} into "
                    f"every program: {why}", lib, e.source, f"preload {lib}",
                    "no preloaded library, or a packaged one in a system directory",
                ))
        elif e.mechanism == "ld_conf":
            state = pf.path(e.text)
            st = state.target if state else None
            why = _odd_dir(e.text)
            if why is None and st is not None and st.is_dir and st.mode & 0o002:
                why = f"world-writable (mode {st.mode:04o})"
            if why is not None:
                results.append(_fail(
                    f"Library directory {code(e.text)} ({where}) is searched by the dynamic "
                    f"linker: {why}", e.text, e.source, f"{e.text}: {why}",
                    "system library directories only",
                ))
        elif "LD_" in e.text and e.mechanism not in ("pam", "modules"):
            for var, item, why in _ld_env(e):
                results.append(_fail(
                    f"{var} is set to {code(item)} in {code(e.source.path)} ({where}): {why}",
                    f"{e.source.path}:{e.source.line}", e.source, f"{var}={excerpt(item)}",
                    "no LD_PRELOAD, LD_AUDIT or LD_LIBRARY_PATH pointing outside the system "
                    "library directories",
                ))
    return results


def _option(opt: str) -> tuple[str, str]:
    name, _eq, value = opt.partition("=")
    value = value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    return name.lower(), value.replace('\\"', '"')


class KeysParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_system_uid: int = Field(
        default=999, description="accounts with a uid from 1 to this are system accounts"
    )


@check_type(
    "authorized_keys_backdoor", params_model=KeysParams, missing=MissingPolicy.ERROR,
    needs=("accounts", "sshd"),
)
def authorized_keys_backdoor(facts: Any, params: KeysParams, rule: Rule) -> list[CheckResult]:
    """Fails for authorized_keys shaped like a backdoor rather than a user's login key.

    A key whose ``command=`` forced command has a dropper shape (see
    ``persistence_commands``) or whose ``environment=`` sets ``LD_PRELOAD``, ``LD_AUDIT``,
    ``LD_LIBRARY_PATH`` or ``PATH``; a key without a forced command for a system account
    (uid 1 to ``max_system_uid``) or an account whose shell is ``nologin``/``false`` (a key
    there still opens tunnels with ``ssh -N``; git servers force a command on every key);
    an ``AuthorizedKeysFile`` in a temporary or hidden directory other than ``.ssh``, or an
    ``AuthorizedKeysCommand`` with a dropper shape. Keys of root and of login
    accounts are the ``secret_authorized_keys`` rule's.

    Missing fact: the ``accounts`` or ``sshd`` facts could not be collected or are
    incomplete: ERROR by default.
    """
    accounts = facts.accounts
    by_name = {p.name: p for p in accounts.passwd}
    results: list[CheckResult] = []
    for key in accounts.authorized_keys:
        src = key.source
        res = f"{src.path}:{src.line}"
        for opt in key.options:
            name, value = _option(opt)
            shape = matching_shape(value) if name == "command" else None
            if shape is not None:
                results.append(_fail(
                    f"authorized key {code(src.path)} line {src.line} forces a command that "
                    f"{shape.description} ({code(excerpt(value))})", res, src,
                    f"{shape.id}: command={excerpt(value)}", "no forced command of that shape",
                    shape.severity, rule,
                ))
            var = value.partition("=")[0]
            if name == "environment" and var in ("LD_PRELOAD", "LD_AUDIT", "LD_LIBRARY_PATH",
                                                   "PATH"):
                results.append(_fail(
                    f"authorized key {code(src.path)} line {src.line} sets {code(var)} for "
                    f"the session ({code(excerpt(value))})", res, src,
                    f"environment={excerpt(value)}", "no environment= changing what runs",
                ))
        entry = by_name.get(key.account) if key.account else None
        if entry is None or entry.uid == 0:
            continue
        forced = any(_option(o)[0] == "command" for o in key.options)
        if (0 < entry.uid <= params.max_system_uid or entry.shell_nologin) and not forced:
            kind = "system account" if entry.uid <= params.max_system_uid else "account"
            shell = f", shell {entry.shell}" if entry.shell_nologin else ""
            results.append(_fail(
                f"authorized key {code(src.path)} line {src.line} lets a key log in as "
                f"{kind} {code(entry.name)} (uid {entry.uid}{shell}), which nobody logs in "
                "as", res, src, f"key for {entry.name} uid {entry.uid}",
                "no keys for system or nologin accounts",
            ))
    sshd = facts.sshd
    option = sshd.option("AuthorizedKeysFile") if sshd.installed else None
    key_files = option.values if option is not None and not option.default else ()
    key_src = option.sources[0] if option is not None and option.sources else None
    for value in key_files:
        for path in value.split():
            odd = _under(path, TEMP_DIRS) or any(
                p.startswith(".") and p not in (".ssh", ".", "..") for p in path.split("/")[:-1]
            )
            if odd:
                src = key_src or Source("/etc/ssh/sshd_config")
                results.append(_fail(
                    f"sshd reads authorized keys from {code(path)} ({_where(src)}), a "
                    "temporary or hidden location", path, src, f"AuthorizedKeysFile {path}",
                    "%h/.ssh/authorized_keys or a root-owned system directory",
                ))
    command = sshd.option("AuthorizedKeysCommand") if sshd.installed else None
    if command is not None and not command.default:
        shape = matching_shape(command.value)
        if shape is not None:
            src = command.sources[0] if command.sources else Source("/etc/ssh/sshd_config")
            results.append(_fail(
                f"sshd's AuthorizedKeysCommand ({_where(src)}) {shape.description} "
                f"({code(excerpt(command.value))})", "AuthorizedKeysCommand", src,
                f"{shape.id}: {excerpt(command.value)}", "a packaged key lookup program",
                shape.severity, rule,
            ))
    return results


PAM_EXEC_OPTIONS = ("debug", "expose_authtok", "seteuid", "quiet", "quiet_log", "stdout", "log=",
                    "type=")


def _pam_dirs_ok(path: str) -> bool:
    parent = posixpath.dirname(path)
    return posixpath.basename(parent) == "security" and _under(parent, SYSTEM_LIB_DIRS)


@check_type(
    "pam_backdoor", params_model=NoParams, missing=MissingPolicy.ERROR,
    needs=("persistence", "packages"),
)
def pam_backdoor(facts: Any, params: NoParams, rule: Rule) -> list[CheckResult]:
    """Fails for PAM rules and modules shaped like an authentication backdoor.

    A rule naming its module by an absolute path outside the distribution's module
    directories (``/lib*/security``, ``/usr/lib*/security``, ``/usr/lib/<triplet>/security``);
    ``pam_permit.so`` made ``sufficient`` (or ``[success=done]``) in an ``auth`` stack, which
    lets any password in; ``pam_exec.so`` handed the password (``expose_authtok``), running a
    program outside the system directories, or one with a dropper shape; a module file owned
    by no installed package (when the image has a package database).

    Missing fact: the ``persistence`` or ``packages`` facts could not be collected or are
    incomplete, or a package's file list was cut when ownership decides: ERROR by default.
    """
    pf = persistence_facts(facts)
    packaged = any(db.used for db in facts.packages.databases)
    owned, gaps = owned_index(facts.packages) if packaged else (set(), [])
    results: list[CheckResult] = []
    for r in pf.pam:
        src, res = r.source, f"{r.source.path}:{r.source.line}"
        where = f"PAM rule {code(src.path)} line {src.line}"
        base = posixpath.basename(r.module)
        kind = r.type.lstrip("-").lower()
        if r.module.startswith("/") and not _pam_dirs_ok(r.module):
            results.append(_fail(
                f"{where} loads {code(r.module)} from outside the PAM module directories",
                res, src, f"module {r.module}", "a module of /lib*/security or /usr/lib*/security",
            ))
        control = r.control.lower()
        if base == "pam_permit.so" and kind == "auth" and (
            control == "sufficient" or "success=done" in control.replace(" ", "")
        ):
            results.append(_fail(
                f"{where} lets any password in: pam_permit.so is {code(r.control)} for auth",
                res, src, f"auth {r.control} pam_permit.so", "pam_permit.so never sufficient",
                Severity.CRITICAL, rule,
            ))
        if base == "pam_exec.so":
            args = list(r.arguments)
            program_at = next(
                (i for i, a in enumerate(args) if not a.startswith(PAM_EXEC_OPTIONS)), None
            )
            program = args[program_at] if program_at is not None else ""
            command = " ".join(args[program_at:]) if program_at is not None else ""
            shape = matching_shape(command) if command else None
            why = None
            if "expose_authtok" in args:
                why = "is handed the password (expose_authtok)"
            elif shape is not None:
                why = shape.description
            elif program.startswith("/") and not _under(program, SYSTEM_EXEC_DIRS):
                why = "runs a program outside the system directories"
            if why is not None:
                results.append(_fail(
                    f"{where}: pam_exec.so {why} ({code(excerpt(command))})", res, src,
                    f"pam_exec {excerpt(command)}", "no pam_exec, or a packaged program "
                    "without the password", shape.severity if shape else None, rule,
                ))
        path = r.module_path
        if packaged and path is not None and not any(a in owned for a in _aliases(path)):
            if gaps:
                raise MissingFact("packages", f"{gaps[0]}; cannot tell who owns {path}")
            results.append(_fail(
                f"{where} loads {code(path)}, which no installed package owns", res, src,
                f"{path}: no owning package", "modules installed by a package",
            ))
    return results


def _module_stem(path: str) -> str:
    name = posixpath.basename(path)
    return name.split(".ko", 1)[0].replace("-", "_")


@check_type(
    "kernel_module_boot", params_model=NoParams, missing=MissingPolicy.ERROR,
    needs=("persistence", "packages"),
)
def kernel_module_boot(facts: Any, params: NoParams, rule: Rule) -> list[CheckResult]:
    """Fails for kernel modules loaded at boot the way a rootkit is.

    A ``modprobe.d`` ``install``/``remove`` command with a dropper shape or running a program
    outside the system directories (``install x /bin/false`` passes); a kernel object
    (``*.ko*``) outside ``/lib/modules`` (and the DKMS and source trees); a module named in
    ``/etc/modules`` or ``modules-load.d`` whose every file is owned by no package and lies
    outside the ``updates``/``extra`` directories locally built modules go to (when the image
    has a package database).

    Missing fact: the ``persistence`` or ``packages`` facts could not be collected or are
    incomplete (the walk was cut), or a file list was cut: ERROR by default.
    """
    pf = persistence_facts(facts)
    results: list[CheckResult] = []
    for e in pf.entries:
        if e.mechanism != "modprobe" or not e.command:
            continue
        shape = matching_shape(e.command)
        program = e.command.split()[0] if e.command.split() else ""
        why = shape.description if shape else None
        if why is None and program.startswith("/") and not _under(program, SYSTEM_EXEC_DIRS):
            why = "runs a program outside the system directories"
        if why is not None:
            results.append(_fail(
                f"modprobe directive {code(e.source.path)} line {e.source.line} {why} "
                f"({code(excerpt(e.command))})", f"{e.source.path}:{e.source.line}", e.source,
                excerpt(e.text), "install/remove commands of system programs only",
                shape.severity if shape else None, rule,
            ))
    if not pf.kernel_objects_complete:
        raise MissingFact("persistence", "the list of kernel objects is incomplete: the walk "
                          "of the image was cut")
    for path in pf.kernel_objects:
        if not _under(path, MODULE_DIRS):
            results.append(_fail(
                f"Kernel module {code(path)} lies outside /lib/modules", path, Source(path),
                path, "kernel modules under /lib/modules/<kernel>",
            ))
    loads = [e for e in pf.entries if e.mechanism == "modules" and e.kind == "load"]
    if loads and any(db.used for db in facts.packages.databases):
        owned, gaps = owned_index(facts.packages)
        by_stem: dict[str, list[str]] = {}
        for path in pf.kernel_objects:
            by_stem.setdefault(_module_stem(path), []).append(path)
        for e in loads:
            files = by_stem.get(e.text.replace("-", "_"), [])
            if not files or any(
                any(a in owned for a in _aliases(f)) or "/updates/" in f or "/extra/" in f
                for f in files
            ):
                continue
            if gaps:
                raise MissingFact("packages", f"{gaps[0]}; cannot tell who owns {files[0]}")
            results.append(_fail(
                f"Module {code(e.text)} is loaded at boot ({_where(e.source)}) from "
                f"{code(files[0])}, which no installed package owns", files[0], e.source,
                f"{e.text}: {files[0]} unowned", "boot modules from the kernel's packages",
            ))
    return results


@check_type(
    "setuid_helper", params_model=NoParams, missing=MissingPolicy.ERROR, needs=("files",),
)
def setuid_helper(facts: Any, params: NoParams, rule: Rule) -> list[CheckResult]:
    """Fails once per setuid or setgid file placed or shaped like a privilege backdoor.

    One in ``/tmp``, ``/var/tmp``, ``/dev/shm``, a home (``/home``, ``/root``) or a hidden
    directory; one named like a shell or an interpreter (``bash``, ``python3``, ``perl``,
    ``busybox``, ``env``...); one whose content is that of a shell or interpreter elsewhere
    in the image (by the ``filehashes`` facts, when collected): a setuid copy of a shell
    gives root to whoever runs it. Whether a package owns the file is the
    ``permission_setuid_unowned`` rule's.

    Missing fact: the ``files`` facts could not be collected or are incomplete: ERROR by
    default.
    """
    hashes = facts.filehashes
    shells_by_hash: dict[str, str] = {}
    by_path: dict[str, str] = {}
    if hashes is not None:
        for fh in hashes.files:
            by_path[fh.path] = fh.sha256
            if SHELLS.fullmatch(posixpath.basename(fh.path)):
                shells_by_hash.setdefault(fh.sha256, fh.path)
    results: list[CheckResult] = []
    for sf in facts.files.special_files:
        bits = " and ".join(b for b, on in (("setuid", sf.setuid), ("setgid", sf.setgid)) if on)
        name = posixpath.basename(sf.path)
        copy_of = shells_by_hash.get(by_path.get(sf.path, ""))
        if _under(sf.path, TEMP_DIRS):
            why, sev = "lies in a world-writable temporary directory", None
        elif _under(sf.path, HOME_DIRS):
            why, sev = "lies in a home directory", None
        elif _hidden(sf.path):
            why, sev = "lies in a hidden directory", None
        else:
            why, sev = "", None
        if SHELLS.fullmatch(name):
            why = (why + " and " if why else "") + "is a shell or interpreter"
            sev = Severity.CRITICAL
        elif copy_of is not None and copy_of != sf.path:
            why = (why + " and " if why else "") + f"is a copy of {copy_of}"
            sev = Severity.CRITICAL
        if not why:
            continue
        results.append(_fail(
            f"File {code(sf.path)} is {bits} (mode {sf.mode:04o}, uid {sf.uid}) and {why}",
            sf.path, sf.source, f"{sf.mode:04o} uid {sf.uid}: {why}",
            "setuid programs only in system directories, never a shell",
            sev, rule,
        ))
    return results
