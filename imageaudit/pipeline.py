"""The pipeline the CLI drives: open an image, collect its facts, judge and certify them."""

from __future__ import annotations

import dataclasses
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from imageaudit.certify import Levels, load_levels
from imageaudit.engine import scan_facts
from imageaudit.errors import (
    EXIT_BLOCKED,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    describe_user_error,
)
from imageaudit.facts import Facts, collect_facts
from imageaudit.facts.base import CollectContext
from imageaudit.findings import Report, Rule
from imageaudit.identity import ImageIdentity, identify_image
from imageaudit.ioc import Indicators, IocError
from imageaudit.malware.iocscan import attach_ioc, load_sources
from imageaudit.malware.yarascan import CompiledRules, YaraRulesError, attach_yara, compile_rules
from imageaudit.model import Severity, Status
from imageaudit.openers import AUTO, open_image
from imageaudit.openers.detect import is_daemon_input
from imageaudit.progress import Progress
from imageaudit.report import render
from imageaudit.report.outputs import STDOUT, Finished, OutputWriter
from imageaudit.report.text import print_report
from imageaudit.rules import RuleSet, load_rules
from imageaudit.tailoring import PathSkips, Selection, TailoringError, select_rules, tailor_rules
from imageaudit.waivers import Waiver, load_waivers

AfterStep = Callable[[CollectContext, Facts], Facts]
LOG = logging.getLogger(__name__)


def gather_facts(spec: str, progress: bool | Progress = True, input_kind: str = AUTO,
                 opener: str = AUTO, after: Sequence[AfterStep] = ()) -> Facts:
    """Open ``spec`` read-only, run every collector, close it; timings per phase included.

    ``progress`` shows the sub-steps on stderr (``True``), or hands them to the run's
    :class:`Progress`; ``input_kind`` is ``auto`` (detect) or the kind the user chose
    (``--input-kind``); ``opener`` how a VM disk is read (``--opener``); ``after`` the steps
    that still need the open image once the facts are collected (``--ioc``, ``--yara``).
    """
    own = not isinstance(progress, Progress)
    tracker = Progress(enabled=bool(progress)) if own else progress
    assert isinstance(tracker, Progress)
    if own:
        tracker.start(spec)
    try:
        t0 = time.perf_counter()
        tracker.step("opening the image")
        fs = open_image(spec, input_kind, opener)
        timings = {"open": time.perf_counter() - t0}
        LOG.debug("%s: opened in %.2f s: %s", spec, timings["open"], fs.info.details)
        for key, value in fs.info.details.items():
            if key.endswith("_s") and isinstance(value, (int, float)):
                timings[f"open.{key[:-2]}"] = float(value)
        try:
            facts = collect_facts(fs, timings=timings, after=after, on_step=tracker.step)
        finally:
            fs.close()
        facts.timings["total"] = round(time.perf_counter() - t0, 4)
        LOG.debug("%s: timings %s", spec, facts.timings)
        if own:
            tracker.finish("facts gathered")
    finally:
        if own:
            tracker.close()
    # Notes are warnings (a TCG fallback, a second OS left unaudited): shown even with -q.
    for note in facts.image.notes:
        tracker.note(Text.assemble(("note:", "yellow"), " ", note))
    return facts


def default_rules_dir() -> Path:
    """The rule set shipped inside the package (``imageaudit/ruleset/``, package data)."""
    return Path(__file__).resolve().parent / "ruleset"


@dataclass(frozen=True)
class ScanOptions:
    require: str | None = None
    rules_dir: Path | None = None
    levels_file: Path | None = None
    waivers_file: Path | None = None
    strict: bool = False
    expiry_days: int | None = None
    feeds_dir: Path | None = None
    progress: bool = True
    input_kind: str = AUTO
    opener: str = AUTO
    # Indicators of compromise (``--ioc``, repeatable) and YARA rules (``--yara``).
    ioc_files: tuple[Path, ...] = ()
    yara_rules: Path | None = None
    # trivy's secret scanner, and its vulnerability scanner with a database (``--trivy``,
    # ``--trivy-cache DIR``: trivy's cache directory holding ``db/trivy.db``).
    trivy: bool = False
    trivy_cache: Path | None = None
    trivy_timeout: float | None = None  # seconds per image; trivy_scan's default when None
    debug: bool = False  # ``--debug``: the child process logs at DEBUG too
    # Narrowing and tailoring (``--rule``, ``--skip-rule``, ``--category``, ``--skip-category``,
    # ``--skip-dirs``, ``--skip-files``, ``--tailoring FILE``): recorded in the certification.
    selection: Selection = field(default_factory=Selection)
    path_skips: PathSkips = field(default_factory=PathSkips)
    tailoring_file: Path | None = None
    # What the outputs show (``--severity``; the level is judged on every finding) and the
    # severity at or above which a failing finding exits 3 (``--fail-on``).
    show_severities: frozenset[Severity] | None = None
    fail_on: Severity | None = None


@dataclass(frozen=True)
class Judge:
    """What judging needs, loaded once for every image of a run."""

    rules: RuleSet
    levels: Levels
    waivers: tuple[Waiver, ...]
    # What the image's files are matched against, read before any image is opened.
    indicators: tuple[Indicators, ...] | None = None
    signatures: CompiledRules | None = None
    # The rules a selection left out, the path skips and the tailoring file's digest.
    skipped: tuple[Rule, ...] = ()
    path_skips: PathSkips = field(default_factory=PathSkips)
    tailoring: str | None = None

    @classmethod
    def load(cls, options: ScanOptions) -> Judge:
        rules_dir = options.rules_dir or default_rules_dir()
        levels_file = options.levels_file or rules_dir / "levels.yaml"
        if not levels_file.is_file():
            levels_file = default_rules_dir() / "levels.yaml"
        waivers = load_waivers(options.waivers_file) if options.waivers_file else ()
        rules = load_rules(rules_dir)
        if len(rules) == 0:
            # An empty rule set would certify anything at the highest level.
            raise UsageError(f"{rules_dir}: no rules found; nothing to judge the image by")
        tailoring: str | None = None
        skipped: tuple[Rule, ...] = ()
        try:
            if options.tailoring_file is not None:
                rules, tailoring = tailor_rules(rules, options.tailoring_file)
            if options.selection:
                rules, skipped = select_rules(rules, options.selection)
        except TailoringError as exc:
            raise UsageError(str(exc)) from None
        indicators: tuple[Indicators, ...] | None = None
        signatures: CompiledRules | None = None
        if options.ioc_files:
            try:
                indicators = load_sources(options.ioc_files)
            except IocError as exc:
                raise UsageError(f"--ioc {exc}") from None
        if options.yara_rules is not None:
            try:
                signatures = compile_rules(options.yara_rules)
            except YaraRulesError as exc:
                raise UsageError(f"--yara {exc}") from None
        return cls(rules, load_levels(levels_file), waivers, indicators, signatures,
                   skipped=skipped, path_skips=options.path_skips, tailoring=tailoring)

    def after_steps(self) -> tuple[AfterStep, ...]:
        """What runs over the open image after its facts are collected."""
        steps: list[AfterStep] = []
        if self.indicators is not None:
            steps.append(attach_ioc(self.indicators))
        if self.signatures is not None:
            steps.append(attach_yara(self.signatures))
        return tuple(steps)


def _trivy_steps(spec: str, options: ScanOptions) -> tuple[AfterStep, ...]:
    """trivy's scan (``--trivy``): a directory input is scanned in place, any other copied."""
    if not options.trivy:
        return ()
    from imageaudit.vulns.trivy_scan import DEFAULT_TIMEOUT, trivy_step

    directory = Path(spec) if Path(spec).is_dir() else None
    return (trivy_step(directory, cache_dir=options.trivy_cache,
                       timeout=options.trivy_timeout or DEFAULT_TIMEOUT),)


def scan_one(spec: str, judge: Judge, options: ScanOptions, source: str | None = None,
             progress: Progress | None = None) -> Report:
    """Open, collect, judge and certify one image.

    The image file is hashed in a thread while its facts are collected: hashing releases the
    GIL, and a VM disk is parsed in a child process, so the two overlap. ``source`` is what
    the report names the image by when that is not ``spec`` (a batch names a fetched image by
    its URL, not by its place in the cache); ``progress`` hears each sub-step.
    """
    tracker = progress or Progress(enabled=False)
    daemon = is_daemon_input(spec, options.input_kind)
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="imageaudit-hash") as pool:
        hashing = None if daemon else pool.submit(identify_image, spec, source, stop=stop)
        try:
            facts = gather_facts(spec, progress=tracker, input_kind=options.input_kind,
                                 opener=options.opener,
                                 after=(*judge.after_steps(), *_trivy_steps(spec, options)))
        except BaseException:
            stop.set()  # an image that cannot be read is reported now, not after its hash
            raise
        if options.feeds_dir is not None:
            from imageaudit.vulns.match import assess

            tracker.step(f"matching packages against the feeds in {options.feeds_dir}")
            facts = dataclasses.replace(facts, vulnerabilities=assess(facts, options.feeds_dir))
        tracker.step("hashing the image file")
        identity = None if hashing is None else hashing.result()
    tracker.step(f"judging with {len(judge.rules)} rules")
    return scan_facts(
        facts,
        judge.rules,
        judge.levels,
        judge.waivers,
        identity or ImageIdentity(source=source or spec),
        validity_days=options.expiry_days,
        skipped=judge.skipped,
        path_skips=judge.path_skips,
        tailoring=judge.tailoring,
    )


def shown(report: Report, severities: frozenset[Severity] | None) -> Report:
    """The report as the outputs show it under ``--severity``: only findings of those
    severities. The certification is the one judged on every finding."""
    if severities is None:
        return report
    names = ", ".join(s.value for s in sorted(severities, key=lambda s: -s.rank))
    note = (f"Only {names} findings are shown (--severity); the level is judged on all "
            f"{len(report.findings)} findings")
    return dataclasses.replace(
        report, findings=tuple(f for f in report.findings if f.severity in severities),
        warnings=(*report.warnings, note))


# Outputs ``--severity`` filters: the JSON report stays whole, since it is the certification
# record a catalogue recomputes from its findings.
FILTERED_FORMATS = frozenset({"text", "sarif", "junit", "html", "markdown"})


def render_shown(report: Report, fmt: str, show: frozenset[Severity] | None,
                 required: str | None) -> str:
    """``report`` rendered as ``fmt``, filtered by ``--severity`` when that format is."""
    return render(shown(report, show if fmt in FILTERED_FORMATS else None), fmt,
                  required=required)


@dataclass(frozen=True)
class Audited:
    """What came of one image: its report (JSON, and the object when audited in this process)
    and its rendered outputs, or why there is none.

    ``failure`` says which kind of error: ``unreadable`` (the image, or the user's input, is
    at fault: exit 2), ``timeout`` or ``internal`` (no level: it blocks ``--require``).
    """

    spec: str
    data: dict[str, Any] | None = None
    report: Report | None = None
    rendered: dict[str, str] = dataclasses.field(default_factory=dict)
    error: str | None = None
    failure: str | None = None
    required: str | None = None  # --require, which the HTML report shows beside the level
    show: frozenset[Severity] | None = None  # --severity: what the outputs show

    def render(self, fmt: str) -> str:
        if fmt in self.rendered:
            return self.rendered[fmt]
        if self.report is None:
            raise ValueError(f"{self.spec}: no {fmt} rendering of its report")
        return render_shown(self.report, fmt, self.show, self.required)

    def level(self) -> str | None:
        return None if self.data is None else str(self.data["certification"]["level"])

    def reached(self, level: str) -> bool:
        if self.data is None:
            return False
        return any(lv["name"] == level and lv["granted"]
                   for lv in self.data["certification"]["levels"])

    def unevaluated(self, left_out: frozenset[str] = frozenset()) -> bool:
        """Whether a rule could not be evaluated (``--strict``); a rule the selection left
        out is not evaluated by choice, not for a failure of the scan."""
        return self.data is not None and any(
            f["status"] == Status.ERROR.value and not f.get("waived")
            and f["rule_id"] not in left_out for f in self.data["findings"])

    def fails_on(self, severity: Severity, left_out: frozenset[str] = frozenset()) -> bool:
        """Whether a finding at or above ``severity`` failed or could not be evaluated
        (``--fail-on``; waived ones and rules the selection left out aside)."""
        return self.data is not None and any(
            f["status"] in (Status.FAIL.value, Status.ERROR.value) and not f.get("waived")
            and Severity(f["severity"]).rank >= severity.rank and f["rule_id"] not in left_out
            for f in self.data["findings"])


# Audits one image in a bounded child process (``--timeout``); the CLI supplies it.
Auditor = Callable[[str, Progress], Audited]


@dataclass(frozen=True)
class ScanOutcome:
    code: int
    reports: tuple[Report, ...]
    audited: tuple[Audited, ...] = ()


def audit_here(spec: str, judge: Judge, options: ScanOptions, progress: Progress) -> Audited:
    """Audit ``spec`` in this process; an image the user can act on becomes its error."""
    try:
        report = scan_one(spec, judge, options, progress=progress)
    except Exception as exc:
        known = describe_user_error(exc)
        if known is None:
            raise
        return Audited(spec, error=known, failure="unreadable")
    return Audited(spec, data=report.to_json(), report=report, required=options.require,
                   show=options.show_severities)


def scan_images(specs: Sequence[str], outputs: Sequence[tuple[str, str | None]],
                options: ScanOptions, *, output_dir: Path | None = None,
                dir_formats: Sequence[str] = (), auditor: Auditor | None = None) -> ScanOutcome:
    """Scan every image, writing each one's outputs as it finishes; the exit code and reports.

    ``outputs`` pairs a format with a file (``None`` or ``-``: stdout); ``output_dir`` receives
    ``dir_formats`` per image. ``auditor`` audits an image elsewhere (a bounded child process);
    by default it is audited here. An image that cannot be audited gets its error on stderr
    and the others go on.
    """
    judge = Judge.load(options)
    if options.require and options.require not in judge.levels.names():
        raise UsageError(
            f"unknown level {options.require!r} (levels: {', '.join(judge.levels.names())})"
        )
    pairs = [(fmt, target or STDOUT) for fmt, target in outputs]
    err = Console(stderr=True)
    text_on_stdout = any(fmt == "text" and target == STDOUT for fmt, target in pairs)

    def show_text(done: Finished) -> None:
        report = next((a.report for a in audited if a.spec == done.spec), None)
        if report is not None:
            print_report(shown(report, options.show_severities), Console(file=sys.stdout))
        else:
            sys.stdout.write(done.render("text"))

    writer = OutputWriter(pairs, specs, output_dir=output_dir, dir_formats=dir_formats,
                          show_text=show_text)
    refusals = writer.refusals()
    if refusals:
        raise UsageError("; ".join(refusals))
    progress = Progress(enabled=options.progress)
    audited: list[Audited] = []
    try:
        for spec in specs:
            progress.start(spec)
            result = (auditor(spec, progress) if auditor is not None
                      else audit_here(spec, judge, options, progress))
            audited.append(result)
            if result.data is None:
                progress.finish(None)  # the error says it
                print(f"imageaudit: error: {result.error}", file=sys.stderr)
                continue
            progress.step("writing reports")
            finished = Finished(spec, result.data, result.render)
            written = writer.write(finished)
            progress.finish(f"level {result.level()}")
            if options.progress and not text_on_stdout:
                if result.report is not None:
                    print_report(shown(result.report, options.show_severities), err)
                else:
                    sys.stderr.write(result.render("text"))
            if options.progress and written:
                print(f"{spec}: wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    finally:
        progress.close()
    writer.finish()
    reports = tuple(a.report for a in audited if a.report is not None)
    left_out = frozenset(r.id for r in judge.skipped)
    return ScanOutcome(exit_code(audited, options, left_out), reports, tuple(audited))


def exit_code(audited: Sequence[Audited], options: ScanOptions,
              left_out: frozenset[str] = frozenset()) -> int:
    """2 when an image could not be read, 3 when one is below ``--require`` (an image not
    audited reaches no level) or has a finding at ``--fail-on`` or above, 1 when one was not
    audited (timeout) or, under ``--strict``, a rule could not be evaluated; else 0."""
    if any(a.failure == "unreadable" for a in audited):
        return EXIT_USAGE
    if options.require and not all(a.reached(options.require) for a in audited):
        return EXIT_BLOCKED
    if options.fail_on is not None and any(a.fails_on(options.fail_on, left_out)
                                           for a in audited):
        return EXIT_BLOCKED
    if any(a.data is None for a in audited):
        return EXIT_INTERNAL
    if options.strict and any(a.unevaluated(left_out) for a in audited):
        return EXIT_INTERNAL
    return EXIT_OK
