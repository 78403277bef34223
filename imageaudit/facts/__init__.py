"""Collectors: read an :class:`~imageaudit.imagefs.ImageFS`, return typed, frozen facts.

Collectors never judge and never drop entries. Each module declares one
:class:`~imageaudit.facts.base.Collector`; :func:`collect_facts` runs them all, records the
failure of one as a :class:`~imageaudit.model.CollectorError` and goes on with the next.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from imageaudit.facts import (
    accounts,
    credentials,
    exports,
    filehashes,
    files,
    firewall,
    integrity,
    listeners,
    packages,
    persistence,
    samba,
    secretscan,
    services,
    sshd,
)
from imageaudit.facts import os as os_facts
from imageaudit.facts.base import CollectContext, Collector
from imageaudit.imagefs import ImageFS, OpenInfo
from imageaudit.model import CollectorError, to_jsonable

FACTS_SCHEMA = "imageaudit-facts/1"

COLLECTORS: tuple[Collector, ...] = (
    os_facts.COLLECTOR,
    accounts.COLLECTOR,
    packages.COLLECTOR,
    services.COLLECTOR,
    listeners.COLLECTOR,
    firewall.COLLECTOR,
    sshd.COLLECTOR,
    exports.COLLECTOR,
    samba.COLLECTOR,
    files.COLLECTOR,
    credentials.COLLECTOR,
    filehashes.COLLECTOR,
    secretscan.COLLECTOR,
    persistence.COLLECTOR,
    integrity.COLLECTOR,  # after packages and filehashes: reuses their lists and digests
)


@dataclass(frozen=True)
class ImageInfo:
    kind: str
    format: str
    source: str
    notes: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_open_info(cls, info: OpenInfo) -> ImageInfo:
        return cls(
            kind=info.kind,
            format=info.format,
            source=info.source,
            notes=tuple(info.notes),
            details=dict(info.details),
        )


@dataclass(frozen=True)
class Facts:
    """Everything the collectors found. A family is ``None`` when its collector failed."""

    image: ImageInfo
    os: os_facts.OSFacts | None = None
    accounts: accounts.AccountsFacts | None = None
    packages: packages.PackagesFacts | None = None
    services: services.ServicesFacts | None = None
    listeners: listeners.ListenersFacts | None = None
    firewall: firewall.FirewallFacts | None = None
    sshd: sshd.SshdFacts | None = None
    exports: exports.ExportsFacts | None = None
    samba: samba.SambaFacts | None = None
    files: files.FilesFacts | None = None
    credentials: credentials.CredentialsFacts | None = None
    filehashes: filehashes.FileHashesFacts | None = None
    secretscan: secretscan.SecretScanFacts | None = None
    persistence: persistence.PersistenceFacts | None = None
    integrity: integrity.IntegrityFacts | None = None
    # Not read from the image: the installed packages matched against update and advisory
    # feeds the user supplied (``scan --feeds``); attached by the pipeline after collection.
    vulnerabilities: Any = None
    # trivy's secret and vulnerability scanners run on the image (``scan --trivy``:
    # ``imageaudit.vulns.trivy_scan.TrivyFacts``), attached by a step run after the collectors.
    trivy: Any = None
    # Not read from the image alone: its files matched against what the user brought
    # (``scan --ioc``: ``imageaudit.malware.iocscan.IocResults``; ``scan --yara``:
    # ``imageaudit.malware.yarascan.YaraResults``), attached by steps run after the collectors.
    ioc: Any = None
    yara: Any = None
    errors: tuple[CollectorError, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"schema": FACTS_SCHEMA}
        data.update(to_jsonable(self))
        return data


def collect_facts(
    fs: ImageFS,
    collectors: Sequence[Collector] = COLLECTORS,
    timings: dict[str, float] | None = None,
    after: Sequence[Callable[[CollectContext, Facts], Facts]] = (),
    on_step: Callable[[str], None] | None = None,
) -> Facts:
    """Run every collector over ``fs``; one failing collector never stops the others.

    ``after`` are steps run once the facts are built, while ``fs`` is still open: each gets the
    context (the open image, the shared walk) and the facts, and returns them with what it
    adds (``scan --ioc``, ``scan --yara``). ``on_step`` hears each sub-step as it starts
    (progress, and what a timeout names).
    """
    step = on_step or (lambda _what: None)
    ctx = CollectContext(fs=fs)
    times: dict[str, float] = dict(timings or {})
    start = time.perf_counter()
    patterns = [p for c in collectors for p in c.patterns]
    step("reading the file system")
    fs.prefetch(patterns)
    times["prefetch"] = time.perf_counter() - start
    results: dict[str, Any] = ctx.collected
    for collector in collectors:
        t0 = time.perf_counter()
        ctx.current = collector.name
        step(f"gathering facts: {collector.name}")
        try:
            results[collector.name] = collector.collect(ctx)
        except Exception as exc:  # a hostile image must not stop the other collectors
            ctx.error(collector.name, f"collector failed: {type(exc).__name__}: {exc}")
            results[collector.name] = None
        times[f"collect.{collector.name}"] = time.perf_counter() - t0
    times["collect"] = time.perf_counter() - start
    facts = Facts(
        image=ImageInfo.from_open_info(fs.info),
        errors=tuple(ctx.errors),
        timings={k: round(v, 4) for k, v in times.items()},
        **results,
    )
    for extra in after:
        t0 = time.perf_counter()
        name = getattr(extra, "__name__", "step")
        step(f"gathering facts: {name.removeprefix('run_')}")
        facts = extra(ctx, facts)
        facts.timings[f"after.{name}"] = round(
            time.perf_counter() - t0, 4)
    return facts
