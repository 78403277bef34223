"""Anonymous file sharing beyond vsftpd and smb.conf: ProFTPD, Pure-FTPd, Samba usershares.

The FTP servers are judged by the ``ftp_anonymous`` check type (:mod:`imageaudit.checks.
services`) through :func:`other_ftp_anonymous`; usershares by ``samba_usershare_guest``.
"""

from __future__ import annotations

import bisect
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from imageaudit.checks import MissingPolicy, check_type
from imageaudit.checks.activity import SERVICES, Activity, active, describe
from imageaudit.checks.exposure_db import _fail
from imageaudit.findings import CheckResult, Rule, code
from imageaudit.model import Evidence, Severity, Status

PROFTPD = SERVICES["proftpd"]
PUREFTPD = SERVICES["pureftpd"]
_WRITE_COMMANDS = frozenset({"write", "stor", "stou", "appe", "mkd", "xmkd", "all", "dirs"})
_YES = frozenset({"yes", "on", "true", "1"})


# --- ProFTPD ----------------------------------------------------------------------------------

class _Sections:
    """Settings by enclosing block path, for the settings of a block and of blocks inside it
    without a pass over every setting per block."""

    def __init__(self, settings: tuple[Any, ...]) -> None:
        self.by: dict[str, list[Any]] = {}
        for s in settings:
            self.by.setdefault(s.section or "", []).append(s)
        self.names = sorted(self.by)

    def inside(self, path: str) -> list[Any]:
        out = list(self.by.get(path, ()))
        prefix = path + " > "
        i = bisect.bisect_left(self.names, prefix)
        while i < len(self.names) and self.names[i].startswith(prefix):
            out.extend(self.by[self.names[i]])
            i += 1
        return out


def _proftpd(d: Any, acts: list[Activity], upload: Severity) -> list[CheckResult]:
    results = []
    sections = _Sections(d.settings)
    seen: set[str] = set()
    for block in d.values("<block>"):
        path = f"{block.section} > {block.value}" if block.section else block.value
        if not block.value.startswith("anonymous") or path in seen:
            continue  # blocks written twice at one place share their settings: judged once
        seen.add(path)
        inner = sections.inside(path)
        req = [s for s in inner if s.key == "anonrequirepassword" and s.section == path]
        if req and req[-1].value.strip().lower() in _YES:
            continue  # the account's real password is asked
        limits = [s for s in inner if s.key == "<block>" and s.value.startswith("limit ")]
        login_denied = any(
            "login" in lim.value.split()[1:] and any(
                s.key == "denyall" for s in sections.by.get(f"{lim.section} > {lim.value}", ()))
            for lim in limits if lim.section == path)
        if login_denied:
            continue
        opened = None
        for lim in limits:
            commands = {w.lower() for w in lim.value.split()[1:]}
            inside = sections.by.get(f"{lim.section} > {lim.value}", [])
            if commands & _WRITE_COMMANDS and any(
                    s.key == "allowall" or (s.key == "allow" and "all" in s.value.lower())
                    for s in inside):
                opened = lim
                break
        message = (f"ProFTPD allows anonymous logins ({code('<' + block.value + '>')}, "
                   f"{block.source}) and is enabled: {describe(acts)}")
        if opened is not None:
            message += (f"; anonymous users can also write ({code('<' + opened.value + '>')} "
                        f"with {code('AllowAll')}, {opened.source})")
        results.append(CheckResult(
            Status.FAIL, message, resource="proftpd",
            evidence=Evidence(path=block.source.path, line=block.source.line,
                              observed=f"<{block.value}>", expected="no <Anonymous> block"),
            severity=upload if opened is not None else None))
    return results


# --- Pure-FTPd --------------------------------------------------------------------------------

def _pureftpd(facts: Any, d: Any, acts: list[Activity], upload: Severity) -> list[CheckResult]:
    if not d.present:
        return []
    # Debian's pure-ftpd-wrapper reads only /etc/pure-ftpd/conf; its pure-ftpd.conf is unused
    wrapper = any(s.section == "conf" for s in d.settings)
    mine = [s for s in d.settings if (s.section == "conf") == wrapper]

    def last(key: str) -> Any:
        found = [s for s in mine if s.key == key]
        return found[-1] if found else None

    no_anon = last("noanonymous")
    if no_anon is not None and no_anon.value.strip().lower() in _YES:
        return []
    accounts = getattr(facts, "accounts", None)
    if accounts is not None and not any(p.name == "ftp" for p in accounts.passwd):
        return []  # without an "ftp" account Pure-FTPd refuses anonymous logins
    why = (f"{code('NoAnonymous ' + no_anon.value)}, {no_anon.source}" if no_anon else
           f"no {code('NoAnonymous yes')}")
    dirs = last("anonymouscancreatedirs")
    worse = dirs is not None and dirs.value.strip().lower() in _YES
    cant = last("anonymouscantupload")
    uploads = cant is None or cant.value.strip().lower() not in _YES
    message = (f"Pure-FTPd allows anonymous logins ({why}; the {code('ftp')} account exists) "
               f"and is enabled: {describe(acts)}")
    if worse:
        message += (f"; anonymous users can also create directories "
                    f"({code('AnonymousCanCreateDirs ' + dirs.value)}, {dirs.source})")
    elif uploads:
        message += (f"; they may upload wherever the {code('ftp')} account can write (no "
                    f"{code('AnonymousCantUpload yes')})")
    src = no_anon.source if no_anon else None
    return [CheckResult(
        Status.FAIL, message, resource="pure-ftpd",
        evidence=Evidence(path=src.path if src else None, line=src.line if src else None,
                          observed=no_anon.value if no_anon else "NoAnonymous unset",
                          expected="NoAnonymous yes"),
        severity=upload if worse else None)]


def other_ftp_anonymous(facts: Any, upload: Severity) -> list[CheckResult]:
    """Anonymous-login failures of ProFTPD and Pure-FTPd, when they run."""
    results: list[CheckResult] = []
    acts = active(facts, PROFTPD)
    if acts:
        for d in facts.listeners.get("proftpd"):
            results.extend(_proftpd(d, acts, upload))
    acts = active(facts, PUREFTPD)
    if acts:
        for d in facts.listeners.get("pure-ftpd"):
            results.extend(_pureftpd(facts, d, acts, upload))
    return results


# --- Samba usershares -------------------------------------------------------------------------

USERSHARE_PATH = "/var/lib/samba/usershares"
_EVERYONE = ("s-1-1-0", "everyone")


class UsershareParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    writable_severity: Severity = Field(
        default=Severity.CRITICAL, description="severity when Everyone may also write")


def _global(samba: Any, name: str) -> Any:
    found = [p for p in samba.globals.params if p.canonical == name]
    return found[-1] if found else None


@check_type("samba_usershare_guest", params_model=UsershareParams,
            missing=MissingPolicy.ERROR, needs=("samba", "listeners"))
def samba_usershare_guest(facts: Any, params: UsershareParams, rule: Rule) -> list[CheckResult]:
    """Fails once per usershare (``net usershare add``) that guests reach without a password.

    A usershare file (``/var/lib/samba/usershares/<name>``) with ``guest_ok=y`` is served to
    guests when ``usershare allow guests = yes`` in ``[global]``; ``usershare max shares = 0``
    switches usershares off (Samba's own default is 0, Debian's build 100, so an absent value
    is taken as on). ``usershare_acl`` granting Everyone (``S-1-1-0``) full control (``F``)
    or change (``C``) raises the severity to ``writable_severity``. A ``usershare path``
    other than the default is not read: ERROR.

    Missing fact: without the samba or listeners facts; ``error``.
    """
    samba = facts.samba
    if not samba.present:
        return []
    maxp = _global(samba, "usershare max shares")
    if maxp is not None and maxp.value.strip() == "0":
        return []
    path = _global(samba, "usershare path")
    if path is not None and path.value.strip().rstrip("/") != USERSHARE_PATH:
        return [CheckResult(
            Status.ERROR, "Could not evaluate Samba usershares: "
            f"{code('usershare path = ' + path.value)} ({path.source}) is not read",
            resource="usershares",
            evidence=Evidence(path=path.source.path, line=path.source.line,
                              observed=path.value, expected=USERSHARE_PATH))]
    if not samba.globals.usershare_allow_guests:
        return []
    allow = _global(samba, "usershare allow guests")
    results = []
    for d in facts.listeners.get("samba-usershares"):
        shares: dict[str, dict[str, Any]] = {}
        for s in d.settings:  # one pass: the last value of each key of each share
            if s.section:
                shares.setdefault(s.section, {})[s.key] = s
        for name in sorted(shares):
            get = shares[name].get

            guest = get("guest_ok")
            if guest is None or guest.value.strip().lower() not in ("y", "yes"):
                continue
            acl = get("usershare_acl")
            entries = [e.strip().lower() for e in (acl.value if acl else "").split(",")]
            writable = any(e.rsplit(":", 1)[0] in _EVERYONE and e.rsplit(":", 1)[-1] in ("f", "c")
                           for e in entries if ":" in e)
            share_path = get("path")
            where = f" ({code(share_path.value)})" if share_path else ""
            message = (f"Samba usershare {code(name)}{where} is open to guests without a "
                       f"password ({code('guest_ok=' + guest.value)}, {guest.source}, with "
                       f"{code('usershare allow guests = ' + allow.value)}, {allow.source})")
            if writable and acl is not None:
                message += (f" and Everyone can write to it ({code('usershare_acl=' + acl.value)},"
                            f" {acl.source})")
            results.append(_fail(message, name, guest, "guest_ok=y" + (
                ", Everyone writable" if writable else ""), "guest_ok=n",
                params.writable_severity if writable else None))
    return results
