"""The batch driver: expand the inputs, skip what is already audited, run one Dask task per
remaining image, keep each result the moment it arrives.

Every result goes into the results store as it comes back (the report, then the audit row
keyed by the image's SHA-512 and everything the result depends on), so a driver killed at any
point loses at most the images still running: the same command again finds the finished ones
in the store and audits only the rest. Publishing goes through the store's outbox, which
already sends a report at most once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from imageaudit import __version__
from imageaudit.batch.results import ImageResult
from imageaudit.batch.sources import BatchItem, Expanded, expand
from imageaudit.batch.summary import write_atomic
from imageaudit.batch.task import TaskOutcome, TaskSettings, audit_item
from imageaudit.errors import UsageError
from imageaudit.model import Severity, Status
from imageaudit.pipeline import Judge, ScanOptions
from imageaudit.store import ResultsStore, canonical_json, utcnow
from imageaudit.tailoring import PathSkips, Selection
from imageaudit.vulns.trivy_scan import trivy_identity

# Per-image report files written under OUTPUT_DIR/reports/, by format.
REPORT_FORMATS = ("json", "html")
DEFAULT_MAX_IMAGE_BYTES = 64 * 2**30


@dataclass(frozen=True, slots=True)
class BatchOptions:
    inputs: tuple[str, ...]
    output_dir: Path
    cache_dir: Path
    rules_dir: Path | None = None
    levels_file: Path | None = None
    waivers_file: Path | None = None
    feeds_dir: Path | None = None
    expiry_days: int | None = None
    input_kind: str = "auto"
    opener: str = "auto"
    require: str | None = None
    # What every image's files are matched against (``--ioc``, ``--yara``).
    ioc_files: tuple[Path, ...] = ()
    yara_rules: Path | None = None
    # trivy run on every image (``--trivy``; its cache on each worker's machine).
    trivy: bool = False
    trivy_cache: Path | None = None
    trivy_timeout: float | None = None
    verify_with: Path | None = None
    store_url: str | None = None
    scheduler: str | None = None
    workers: int | None = None
    force: bool = False
    timeout: float | None = None
    memory_bytes: int | None = None
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    attach: bool = False
    insecure_registry: bool = False
    # Rule selection, skipped paths and a tailoring file (``--skip-rule``, ``--tailoring``...).
    selection: Selection = field(default_factory=Selection)
    path_skips: PathSkips = field(default_factory=PathSkips)
    tailoring_file: Path | None = None


@dataclass(frozen=True, slots=True)
class Context:
    """Everything besides the image that a result depends on; part of every audit key."""

    ruleset_version: str
    levels_version: str
    feeds: str | None
    waivers: str | None
    expiry_days: int | None
    tool_version: str = __version__
    # The digest of the ``--ioc`` and ``--yara`` files; in the key only when given, so that the
    # keys of audits without them stay what they were.
    matched: str | None = None
    # trivy's and its database's versions (``--trivy``); in the key only when given.
    trivy: str | None = None
    # The rules left out, the skipped paths and the tailoring file's digest; in the key only
    # when the audit is narrowed or tailored, so that a full audit's result is never reused
    # for a narrowed one, nor the other way round.
    scope: str | None = None

    def key(self, sha512: str) -> str:
        doc = {"sha512": sha512.lower(), "ruleset": self.ruleset_version,
               "levels": self.levels_version, "feeds": self.feeds, "waivers": self.waivers,
               "expiry_days": self.expiry_days, "tool": self.tool_version}
        if self.matched is not None:
            doc["matched"] = self.matched
        if self.trivy is not None:
            doc["trivy"] = self.trivy
        if self.scope is not None:
            doc["scope"] = self.scope
        return hashlib.sha256(canonical_json(doc).encode()).hexdigest()


@dataclass
class BatchOutcome:
    results: list[ImageResult]
    context: Context
    level_names: tuple[str, ...]
    started: str
    finished: str = ""
    notes: list[str] = field(default_factory=list)


def _digest_file(path: Path | None) -> str | None:
    if path is None:
        return None
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _digest_tree(paths: Sequence[Path]) -> str | None:
    """One digest of the files given (each file, or every file under a directory, by path)."""
    if not paths:
        return None
    h = hashlib.sha256()
    for index, top in enumerate(paths):
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for path in files:
            name = path.name if path == top else path.relative_to(top).as_posix()
            h.update(f"{index}:{name}\0".encode())
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return "sha256:" + h.hexdigest()


def _feeds(feeds_dir: Path | None) -> tuple[Path | None, str | None]:
    """The snapshot the whole batch uses (a sync during the run does not mix two), its digest."""
    if feeds_dir is None:
        return None, None
    from imageaudit.vulns.sync import MANIFEST, FeedError, open_snapshot

    try:
        snapshot = open_snapshot(feeds_dir)
    except FeedError as exc:
        raise UsageError(str(exc)) from exc
    manifest = (snapshot.directory / MANIFEST).read_bytes()
    return snapshot.directory, "sha256:" + hashlib.sha256(manifest).hexdigest()


def _slug(text: str) -> str:
    base = text.rstrip("/").rsplit("/", 1)[-1] or "image"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", base)[:60].strip("._") or "image"


def _report_stem(item: BatchItem, sha512: str | None) -> str:
    digest = (sha512 or hashlib.sha256(item.dedup_key.encode()).hexdigest())[:16]
    return f"{_slug(item.source)}-{digest}"


def _failed_by_severity(report: dict[str, Any]) -> dict[str, int]:
    counts = {s.value: 0 for s in Severity}
    for finding in report.get("findings", ()):
        if finding.get("status") == Status.FAIL.value and not finding.get("waived"):
            sev = str(finding.get("severity", ""))
            if sev in counts:
                counts[sev] += 1
    return counts


class Recorder:
    """Turns task outcomes into stored results and report files, one image at a time."""

    def __init__(self, store: ResultsStore, options: BatchOptions, context: Context,
                 levels: tuple[str, ...]) -> None:
        self.store = store
        self.options = options
        self.context = context
        self.levels = levels

    def reached(self, level: str | None) -> bool | None:
        required = self.options.require
        if required is None:
            return None
        if level is None or level not in self.levels:
            return False
        return self.levels.index(level) >= self.levels.index(required)

    def _write_reports(self, item: BatchItem, sha512: str | None, report: dict[str, Any],
                       rendered: dict[str, str]) -> dict[str, str]:
        stem = _report_stem(item, sha512)
        written: dict[str, str] = {}
        texts = dict(rendered)
        texts.setdefault("json", json.dumps(report, indent=2, ensure_ascii=False))
        for fmt in REPORT_FORMATS:
            if fmt in texts:
                rel = f"reports/{stem}.{fmt}"
                target = self.options.output_dir / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(target, texts[fmt])
                written[fmt] = rel
        return written

    def _existing_reports(self, item: BatchItem, sha512: str,
                          report: dict[str, Any] | None) -> dict[str, str]:
        stem = _report_stem(item, sha512)
        found = {fmt: f"reports/{stem}.{fmt}" for fmt in REPORT_FORMATS
                 if (self.options.output_dir / "reports" / f"{stem}.{fmt}").is_file()}
        if "json" not in found and report is not None:
            found.update(self._write_reports(item, sha512, report, {}))
        return found

    def result(self, item: BatchItem, **kwargs: Any) -> ImageResult:
        return ImageResult(source=item.source, inputs=item.inputs, identifier=item.identifier,
                           vo=item.vo, title=item.title, **kwargs)

    def from_report(self, item: BatchItem, report: dict[str, Any], report_id: str,
                    reports: dict[str, str], *, cached: bool,
                    seconds: float | None) -> ImageResult:
        cert = report.get("certification") or {}
        level = cert.get("level")
        return self.result(
            item, sha512=cert.get("image_sha512") or item.sha512, level=level,
            counts=dict(report.get("summary") or {}), failed=_failed_by_severity(report),
            report_id=report_id, reports=reports, cached=cached, seconds=seconds,
            reached_required=self.reached(level),
        )

    def cached(self, item: BatchItem, sha512: str) -> ImageResult | None:
        """The earlier result for this image under this context, if there is one."""
        if self.options.force:
            return None
        key = self.context.key(sha512)
        record = self.store.audits([key]).get(key)
        if record is None:
            return None
        if record.error is not None or record.report_id is None:
            return self.result(item, sha512=sha512, error=record.error or "no report",
                               cached=True, reached_required=self.reached(None))
        stored = self.store.get_report(record.report_id)
        if stored is None:
            return None
        reports = self._existing_reports(item, sha512, stored.report)
        return self.from_report(item, stored.report, record.report_id, reports, cached=True,
                                seconds=None)

    def record(self, item: BatchItem, outcome: TaskOutcome) -> ImageResult:
        """Store what a task found (report first, then the audit row) and write its files."""
        from imageaudit.publish import report_id as compute_report_id

        if outcome.report is None:
            error = outcome.error or "no report"
            if outcome.sha512 and not outcome.retryable:
                self.store.record_audit(self.context.key(outcome.sha512), outcome.sha512,
                                        error=error, replace=self.options.force)
            return self.result(item, sha512=outcome.sha512, error=error,
                               seconds=outcome.seconds, reached_required=self.reached(None))
        report = outcome.report
        rid = compute_report_id(report)
        self.store.save_report(rid, report, source=item.source)
        sha512 = outcome.sha512
        if sha512:
            self.store.record_audit(self.context.key(sha512), sha512, report_id=rid,
                                    replace=self.options.force)
            self._remember_file(item, sha512)
            if item.kind == "oci" and outcome.oci_manifest:
                address = self._oci_address(item, outcome.oci_manifest)
                if address is not None:
                    self.store.remember_content(address, sha512)
        reports = self._write_reports(item, sha512, report, outcome.rendered)
        return self.from_report(item, report, rid, reports, cached=False,
                                seconds=outcome.seconds)

    def _remember_file(self, item: BatchItem, sha512: str) -> None:
        if item.kind != "path":
            return
        path = os.path.realpath(item.locator)
        with contextlib.suppress(OSError):
            st = Path(path).stat()
            if Path(path).is_file():
                self.store.remember_hash(path, size=st.st_size, mtime_ns=st.st_mtime_ns,
                                         inode=st.st_ino, sha512=sha512)

    def _oci_address(self, item: BatchItem, manifest: str | None = None) -> str | None:
        """``oci:HOST/REPO@DIGEST`` of the manifest the item's artefact resolves to."""
        from imageaudit.batch.registry import RegistryError, parse_oci_ref, resolve

        ref = parse_oci_ref(item.locator)
        if manifest is None:
            try:
                manifest = resolve(ref, insecure=self.options.insecure_registry)
            except RegistryError:
                return None  # the task will say why, as the image's error
        return f"oci:{ref.registry}/{ref.repository}@{manifest}"

    def known_sha512(self, item: BatchItem) -> str | None:
        if item.sha512:
            return item.sha512.lower()
        if item.kind == "oci":
            address = self._oci_address(item)
            return None if address is None else self.store.known_content(address)
        if item.kind != "path":
            return None
        path = os.path.realpath(item.locator)
        try:
            st = Path(path).stat()
        except OSError:
            return None
        return self.store.known_hash(path, size=st.st_size, mtime_ns=st.st_mtime_ns,
                                     inode=st.st_ino)


@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int | None) -> Iterator[Any]:
    """A client of the given scheduler, or of a local cluster of one-thread worker processes."""
    import dask
    from distributed import Client, LocalCluster

    for name in ("distributed", "distributed.nanny", "distributed.scheduler",
                 "distributed.worker", "distributed.core", "tornado"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="30s")  # type: ignore[no-untyped-call]
        except OSError as exc:
            raise UsageError(f"cannot reach the Dask scheduler {scheduler}: {exc}") from exc
        with client:
            yield client
        return
    n = workers or os.cpu_count() or 1
    # A worker that died running an image (killed by the kernel's OOM killer, say) is replaced
    # by its nanny; the image is tried once more, then reported as an error.
    with dask.config.set({"distributed.scheduler.allowed-failures": 1,
                          "distributed.worker.daemon": False,
                          "distributed.admin.system-monitor.gil.enabled": False}), \
            LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:  # type: ignore[no-untyped-call]
        yield client


def _worker_death(item: BatchItem, exc: BaseException) -> TaskOutcome:
    name = type(exc).__name__
    if name == "KilledWorker":
        why = "the Dask worker running it died (crashed, or was killed for its memory)"
    else:
        why = f"the task failed: {name}: {exc}"
    return TaskOutcome(source=item.source, error=why, sha512=item.sha512, retryable=True)


def _scope_digest(judge: Judge) -> str | None:
    """What narrows or tailors the audit, as one digest; None for a full audit."""
    if not (judge.skipped or judge.path_skips or judge.tailoring):
        return None
    doc = {"skipped_rules": sorted(r.id for r in judge.skipped),
           "skipped_dirs": list(judge.path_skips.dirs),
           "skipped_files": list(judge.path_skips.files), "tailoring": judge.tailoring}
    return hashlib.sha256(canonical_json(doc).encode()).hexdigest()


def run_batch(options: BatchOptions, *,
              on_result: Callable[[ImageResult, int, int], None] | None = None,
              on_plan: Callable[[int, int], None] | None = None,
              expanded: Expanded | None = None) -> BatchOutcome:
    """Audit every image the inputs name; one ImageResult per image and per failed input.

    ``on_plan(total, cached)`` is called once the items are known, ``on_result(result, done,
    total)`` for each result as it is stored.
    """
    # Indicators that cannot be read and rules that do not compile stop the batch here.
    scan_options = ScanOptions(rules_dir=options.rules_dir, levels_file=options.levels_file,
                               waivers_file=options.waivers_file, progress=False,
                               ioc_files=options.ioc_files, yara_rules=options.yara_rules,
                               selection=options.selection, path_skips=options.path_skips,
                               tailoring_file=options.tailoring_file)
    matched_with = [*options.ioc_files, *([options.yara_rules] if options.yara_rules else [])]
    judge = Judge.load(scan_options)
    level_names = judge.levels.names()
    if options.require and options.require not in level_names:
        raise UsageError(f"unknown level {options.require!r} (levels: {', '.join(level_names)})")
    feeds_dir, feeds = _feeds(options.feeds_dir)
    trivy = trivy_identity(cache_dir=options.trivy_cache) if options.trivy else None
    context = Context(ruleset_version=judge.rules.version, levels_version=judge.levels.version,
                      feeds=feeds, waivers=_digest_file(options.waivers_file),
                      expiry_days=options.expiry_days, matched=_digest_tree(matched_with),
                      trivy=trivy, scope=_scope_digest(judge))
    outcome = BatchOutcome(results=[], context=context, level_names=level_names,
                           started=utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"))
    expanded = expanded or expand(options.inputs, verify_with=options.verify_with)
    outcome.notes.extend(expanded.notes)
    options.output_dir.mkdir(parents=True, exist_ok=True)
    options.cache_dir.mkdir(parents=True, exist_ok=True)
    settings = TaskSettings(
        cache_dir=str(options.cache_dir), max_image_bytes=options.max_image_bytes,
        rules_dir=str(options.rules_dir) if options.rules_dir else None,
        levels_file=str(options.levels_file) if options.levels_file else None,
        waivers_file=str(options.waivers_file) if options.waivers_file else None,
        feeds_dir=str(feeds_dir) if feeds_dir else None, expiry_days=options.expiry_days,
        input_kind=options.input_kind, opener=options.opener, formats=REPORT_FORMATS,
        timeout=options.timeout, memory_bytes=options.memory_bytes,
        insecure_registry=options.insecure_registry,
        ioc_files=tuple(str(p.resolve()) for p in options.ioc_files),
        yara_rules=str(options.yara_rules.resolve()) if options.yara_rules else None,
        trivy=options.trivy, trivy_timeout=options.trivy_timeout,
        selection=options.selection, path_skips=options.path_skips,
        tailoring_file=str(options.tailoring_file.resolve()) if options.tailoring_file else None,
        trivy_cache=str(options.trivy_cache.resolve()) if options.trivy_cache else None,
    )
    total = len(expanded.items) + len(expanded.errors)
    done = 0

    def emit(result: ImageResult) -> None:
        nonlocal done
        done += 1
        outcome.results.append(result)
        if on_result is not None:
            on_result(result, done, total)

    with ResultsStore.open(options.store_url) as store:
        recorder = Recorder(store, options, context, level_names)
        pending: list[BatchItem] = []
        cached: list[ImageResult] = []
        for item in expanded.items:
            sha512 = recorder.known_sha512(item)
            hit = recorder.cached(item, sha512) if sha512 else None
            if hit is None:
                pending.append(item)
            else:
                cached.append(hit)
        if on_plan is not None:
            on_plan(total, len(cached))
        for failed in expanded.errors:
            emit(ImageResult(source=failed.input, inputs=(failed.input,), error=failed.error,
                             reached_required=recorder.reached(None)))
        for hit in cached:
            emit(hit)
        if pending:
            with dask_client(options.scheduler, options.workers) as client:
                from distributed import as_completed

                submitted = {}
                for item in pending:
                    fut = client.submit(audit_item, item, settings, pure=False,
                                        key=f"imageaudit-audit-{_slug(item.source)}-"
                                            f"{os.urandom(6).hex()}")
                    submitted[fut] = item
                for fut in as_completed(list(submitted)):  # type: ignore[no-untyped-call]
                    item = submitted[fut]
                    try:
                        task: TaskOutcome = fut.result()
                    except Exception as exc:
                        task = _worker_death(item, exc)
                    result = recorder.record(item, task)
                    if options.attach and item.kind == "oci" and task.report is not None:
                        result, note = _attach(result, item, task, options)
                        if note:
                            outcome.notes.append(note)
                    emit(result)
    outcome.finished = utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
    # In the order the inputs named them (inputs that gave no image first), not as they ended.
    sources = [e.input for e in expanded.errors] + [i.source for i in expanded.items]
    order = {source: i for i, source in enumerate(sources)}
    outcome.results.sort(key=lambda r: order.get(r.source, len(order)))
    return outcome


def _attach(result: ImageResult, item: BatchItem, task: TaskOutcome,
            options: BatchOptions) -> tuple[ImageResult, str | None]:
    """Attach the report to the artefact it audits, as an OCI referrer; a failure is a note
    (the image was audited all the same)."""
    from imageaudit.batch.registry import RegistryError, attach_report, parse_oci_ref

    if task.report is None or task.oci_manifest is None:
        return result, None
    try:
        digest = attach_report(parse_oci_ref(item.locator), task.oci_manifest,
                               canonical_json(task.report).encode(),
                               insecure=options.insecure_registry)
    except RegistryError as exc:
        return result, f"{item.source}: audited, but the report could not be attached: {exc}"
    return replace(result, reports={**result.reports, "oci": digest}), None


def exit_code(outcome: BatchOutcome, require: str | None, strict: bool) -> int:
    """3 when an image is below ``require``, 1 under ``strict`` when one was not audited."""
    from imageaudit.errors import EXIT_BLOCKED, EXIT_INTERNAL, EXIT_OK

    if require and any(r.reached_required is False for r in outcome.results):
        return EXIT_BLOCKED
    if strict and any(not r.audited for r in outcome.results):
        return EXIT_INTERNAL
    return EXIT_OK


__all__ = ["BatchOptions", "BatchOutcome", "Context", "exit_code", "run_batch"]
