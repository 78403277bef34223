"""Services *enabled* in the image: systemd, SysV init, OpenRC, inetd and xinetd.

The raw records of each init system are kept (read in this folder by :mod:`.systemd`,
:mod:`.sysv`, :mod:`.inetd`), and a normalised list of :class:`EnabledService` lets a rule
ask "is telnet enabled" without knowing the init system:

- systemd: a ``.service``/``.socket``/``.timer`` unit named by an enablement link (in a
  ``.wants``/``.requires``/``.upholds`` directory) and not masked; ``WantedBy=`` alone is not
  enablement. ``at_default_target`` says whether the default target pulls it in.
- SysV: an ``S`` link in ``/etc/rc{S,1..5}.d``; ``at_default_target`` when one is in the
  default runlevel of ``/etc/inittab`` (``None`` when that is unknown).
- OpenRC: an entry in any ``/etc/runlevels/<level>/`` but ``shutdown``.
- inetd: an uncommented ``/etc/inetd.conf`` entry; xinetd: a service not switched off by
  ``disable = yes`` or the ``defaults`` lists. Whether (x)inetd itself runs is the
  corresponding init record.

Presets (``/usr/lib/systemd/system-preset``) are not enablement and are not read.

Follows systemd.unit(5), systemd.special(7), systemctl(1) ("is-enabled"), init(8),
inittab(5), openrc(8), rc-update(8), inetd.conf(5), update-inetd(8), xinetd.conf(5).
"""

from __future__ import annotations

from dataclasses import dataclass

from imageaudit.facts.base import CollectContext, Collector
from imageaudit.facts.conftext import MalformedLine
from imageaudit.facts.services.inetd import (
    InetdFacts,
    XinetdFacts,
    collect_inetd,
    collect_xinetd,
    xinetd_enabled,
)
from imageaudit.facts.services.systemd import SystemdFacts, collect_systemd
from imageaudit.facts.services.sysv import OpenRCFacts, SysvFacts, collect_openrc, collect_sysv
from imageaudit.model import Source

MECHANISMS = ("systemd", "sysv", "openrc", "inetd", "xinetd")
SYSTEMD_SERVICE_KINDS = ("service", "socket", "timer")
SYSV_BOOT_RUNLEVELS = frozenset({"S", "1", "2", "3", "4", "5"})


@dataclass(frozen=True, slots=True)
class EnabledService:
    """One enabled service, whatever starts it."""

    name: str  # "ssh", "telnet", "getty@tty1": the unit name without its type suffix
    mechanism: str  # systemd | sysv | openrc | inetd | xinetd
    unit: str  # unit file name, init script name, or the inetd/xinetd server program
    # (for inetd entries run through tcpd: the wrapped program)
    at_default_target: bool | None  # started on the way to the default target/runlevel
    detail: str  # how: link paths, runlevels, socket type and protocol
    source: Source


@dataclass(frozen=True, slots=True)
class ServicesFacts:
    init_systems: tuple[str, ...]  # mechanisms with configuration present in the image
    enabled: tuple[EnabledService, ...]
    systemd: SystemdFacts
    sysv: SysvFacts
    openrc: OpenRCFacts
    inetd: InetdFacts
    xinetd: XinetdFacts

    @property
    def malformed(self) -> tuple[MalformedLine, ...]:
        """Every malformed line any mechanism met."""
        return (
            self.systemd.malformed + self.sysv.malformed + self.inetd.malformed
            + self.xinetd.malformed
        )

    def is_enabled(self, name: str) -> bool:
        """True when any mechanism enables a service called ``name``."""
        return any(s.name == name for s in self.enabled)


def _systemd_enabled(facts: SystemdFacts) -> list[EnabledService]:
    out = []
    for unit in facts.units:
        if unit.kind not in SYSTEMD_SERVICE_KINDS or not unit.enabled or unit.masked:
            continue
        if unit.alias_of is not None:  # the unit itself is listed under its real name
            continue
        out.append(
            EnabledService(
                name=unit.name.rsplit(".", 1)[0],
                mechanism="systemd",
                unit=unit.name,
                at_default_target=unit.in_default_target,
                detail="linked from " + ", ".join(unit.enabled_by),
                source=Source(unit.enabled_by[0]),
            )
        )
    return out


def _sysv_enabled(facts: SysvFacts) -> list[EnabledService]:
    out = []
    for script in facts.scripts:
        levels = [lv for lv in script.start_runlevels if lv in SYSV_BOOT_RUNLEVELS]
        if not levels:
            continue
        at_default: bool | None = None
        if facts.default_runlevel is not None:
            at_default = facts.default_runlevel in levels or "S" in levels
        first = next(
            lk for lk in facts.links if lk.script == script.name and lk.runlevel in levels
            and lk.action == "start"
        )
        out.append(
            EnabledService(
                name=script.name,
                mechanism="sysv",
                unit=script.name,
                at_default_target=at_default,
                detail="runlevels " + ",".join(levels),
                source=first.source,
            )
        )
    return out


def _openrc_enabled(facts: OpenRCFacts) -> list[EnabledService]:
    out = []
    for entry in facts.entries:
        if entry.runlevel == "shutdown":
            continue
        out.append(
            EnabledService(
                name=entry.name,
                mechanism="openrc",
                unit=entry.name,
                at_default_target=entry.runlevel in ("sysinit", "boot", "default"),
                detail=f"runlevel {entry.runlevel}",
                source=entry.source,
            )
        )
    return out


def _inetd_enabled(inetd: InetdFacts, xinetd: XinetdFacts) -> list[EnabledService]:
    out = [
        EnabledService(
            name=e.service,
            mechanism="inetd",
            # tcpd wraps the real daemon, which is its first argument
            unit=e.args[0] if e.server.endswith("/tcpd") and e.args else e.server,
            at_default_target=None,
            detail=f"{e.socket_type}/{e.protocol}",
            source=e.source,
        )
        for e in inetd.entries
        if e.enabled
    ]
    for svc in xinetd.services:
        if not xinetd_enabled(xinetd, svc):
            continue
        out.append(
            EnabledService(
                name=svc.name,
                mechanism="xinetd",
                unit=svc.server or "",
                at_default_target=None,
                detail=f"{svc.socket_type or '?'}/{svc.protocol or '?'}",
                source=svc.source,
            )
        )
    return out


def collect(ctx: CollectContext) -> ServicesFacts:
    """Enabled services of every init system found in the image."""
    systemd = collect_systemd(ctx)
    sysv = collect_sysv(ctx)
    openrc = collect_openrc(ctx)
    inetd = collect_inetd(ctx)
    xinetd = collect_xinetd(ctx)
    present = {
        "systemd": systemd.present,
        "sysv": sysv.present,
        "openrc": openrc.present,
        "inetd": inetd.present,
        "xinetd": xinetd.present,
    }
    enabled = (
        _systemd_enabled(systemd)
        + _sysv_enabled(sysv)
        + _openrc_enabled(openrc)
        + _inetd_enabled(inetd, xinetd)
    )
    enabled.sort(key=lambda s: (s.name, s.mechanism, s.unit, s.source.path, s.source.line or 0))
    return ServicesFacts(
        init_systems=tuple(m for m in MECHANISMS if present[m]),
        enabled=tuple(enabled),
        systemd=systemd,
        sysv=sysv,
        openrc=openrc,
        inetd=inetd,
        xinetd=xinetd,
    )


COLLECTOR = Collector(
    name="services",
    patterns=(
        "/etc/systemd/system/*",
        "/lib/systemd/system/*",
        "/usr/lib/systemd/system/*",
        "/etc/inittab",
        "/etc/rc?.d/*",
        "/etc/init.d/*",
        "/etc/runlevels/*/*",
        "/etc/inetd.conf",
        "/etc/xinetd.conf",
        "/etc/xinetd.d/*",
    ),
    collect=collect,
)
