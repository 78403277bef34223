"""The pipeline the CLI drives: open an image, collect its facts, judge and certify them."""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.text import Text

from imageaudit.certify import Levels, load_levels
from imageaudit.engine import scan_facts
from imageaudit.errors import EXIT_BLOCKED, EXIT_INTERNAL, EXIT_OK, UsageError
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
from imageaudit.report import render
from imageaudit.report.text import print_report
from imageaudit.rules import RuleSet, load_rules
from imageaudit.tailoring import PathSkips, Selection, TailoringError, select_rules, tailor_rules
from imageaudit.waivers import Waiver, load_waivers

AfterStep = Callable[[CollectContext, Facts], Facts]


@contextlib.contextmanager
def _status(console: Console | None, message: str) -> Iterator[None]:
    if console is None:
        yield
        return
    with console.status(message, spinner="dots"):
        yield


def gather_facts(spec: str, progress: bool = True, input_kind: str = AUTO,
                 opener: str = AUTO, after: Sequence[AfterStep] = ()) -> Facts:
    """Open ``spec`` read-only, run every collector, close it; timings per phase included.

    ``input_kind`` is ``auto`` (detect) or the kind the user chose (``--input-kind``);
    ``opener`` how a VM disk is read (``--opener``); ``after`` the steps that still need the
    open image once the facts are collected (``--ioc``, ``--yara``).
    """
    console = Console(stderr=True) if progress else None
    t0 = time.perf_counter()
    with _status(console, f"Opening {spec}"):
        fs = open_image(spec, input_kind, opener)
    timings = {"open": time.perf_counter() - t0}
    for key, value in fs.info.details.items():
        if key.endswith("_s") and isinstance(value, (int, float)):
            timings[f"open.{key[:-2]}"] = float(value)
    try:
        with _status(console, f"Collecting facts from {spec}"):
            facts = collect_facts(fs, timings=timings, after=after)
    finally:
        fs.close()
    facts.timings["total"] = round(time.perf_counter() - t0, 4)
    # Notes are warnings (a TCG fallback, a second OS left unaudited): shown even with -q.
    notes_console = console or Console(stderr=True)
    for note in facts.image.notes:
        # One line each (no wrapping at 80 columns in CI logs); image text is not markup.
        notes_console.print(Text.assemble(("note:", "yellow"), " ", note), soft_wrap=True,
                            highlight=False)
    return facts


def default_rules_dir() -> Path:
    """The rules shipped with imageaudit (``rules/`` beside the package)."""
    return Path(__file__).resolve().parent.parent / "rules"


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


def scan_one(spec: str, judge: Judge, options: ScanOptions, source: str | None = None) -> Report:
    """Open, collect, judge and certify one image.

    The image file is hashed in a thread while its facts are collected: hashing releases the
    GIL, and a VM disk is parsed in a child process, so the two overlap. ``source`` is what
    the report names the image by when that is not ``spec`` (a batch names a fetched image by
    its URL, not by its place in the cache).
    """
    daemon = is_daemon_input(spec, options.input_kind)
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="imageaudit-hash") as pool:
        hashing = None if daemon else pool.submit(identify_image, spec, source, stop=stop)
        try:
            facts = gather_facts(spec, progress=options.progress, input_kind=options.input_kind,
                                 opener=options.opener,
                                 after=(*judge.after_steps(), *_trivy_steps(spec, options)))
        except BaseException:
            stop.set()  # an image that cannot be read is reported now, not after its hash
            raise
        console = Console(stderr=True) if options.progress else None
        if options.feeds_dir is not None:
            from imageaudit.vulns.match import assess

            with _status(console, f"Matching packages against the feeds in {options.feeds_dir}"):
                facts = dataclasses.replace(facts,
                                            vulnerabilities=assess(facts, options.feeds_dir))
        with _status(console, f"Hashing {spec}"):
            identity = None if hashing is None else hashing.result()
    judging = f"Judging {spec} with {len(judge.rules)} rules (password checks included)"
    with _status(console, judging):
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


def reached(report: Report, level: str) -> bool:
    """Whether the report's certification grants ``level``."""
    return any(lv.name == level and lv.granted for lv in report.certification.levels)


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


def fails_on(report: Report, severity: Severity, skipped: frozenset[str] = frozenset()) -> bool:
    """Whether a finding at or above ``severity`` failed or could not be evaluated (waived ones
    and rules the selection left out aside)."""
    return any(
        f.status in (Status.FAIL, Status.ERROR) and not f.waived
        and f.severity.rank >= severity.rank and f.rule_id not in skipped
        for f in report.findings)


@dataclass(frozen=True)
class ScanOutcome:
    code: int
    reports: tuple[Report, ...]


def scan_images(specs: Sequence[str], outputs: Sequence[tuple[str, str | None]],
                options: ScanOptions) -> ScanOutcome:
    """Scan every image, write every requested output; the CLI exit code and the reports."""
    judge = Judge.load(options)
    if options.require and options.require not in judge.levels.names():
        raise UsageError(
            f"unknown level {options.require!r} (levels: {', '.join(judge.levels.names())})"
        )
    console = Console(stderr=True)
    reports: list[Report] = []
    for spec in specs:
        report = scan_one(spec, judge, options)
        reports.append(report)
        if options.progress:
            print_report(shown(report, options.show_severities), console)
    for fmt, target in outputs:
        if fmt == "text" and target is None:
            if not options.progress:
                for report in reports:
                    print_report(shown(report, options.show_severities), console)
            continue
        filtered = options.show_severities if fmt in FILTERED_FORMATS else None
        texts = [render(shown(r, filtered), fmt, required=options.require) for r in reports]
        if target is None or target == "-":
            for text in texts:
                sys.stdout.write(text if text.endswith("\n") else text + "\n")
            continue
        if len(texts) == 1:
            Path(target).write_text(texts[0], encoding="utf-8")
        else:
            base = Path(target)
            for i, text in enumerate(texts, start=1):
                base.with_name(f"{base.stem}-{i}{base.suffix}").write_text(text, encoding="utf-8")
    blocked = bool(options.require) and not all(
        reached(r, options.require or "") for r in reports
    )
    left_out = frozenset(r.id for r in judge.skipped)
    if options.fail_on is not None and any(fails_on(r, options.fail_on, left_out)
                                           for r in reports):
        blocked = True
    # A rule the selection left out is not evaluated by choice, not for a failure of the scan.
    errors = any(f.status is Status.ERROR and not f.waived and f.rule_id not in left_out
                 for r in reports for f in r.findings)
    if blocked:
        return ScanOutcome(EXIT_BLOCKED, tuple(reports))
    if options.strict and errors:
        return ScanOutcome(EXIT_INTERNAL, tuple(reports))
    return ScanOutcome(EXIT_OK, tuple(reports))
