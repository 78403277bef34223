"""``imageaudit batch``: audit every image of image lists, the catalogue, OCI registries and
directories in one run, on a local Dask cluster or an existing scheduler."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from imageaudit.cli.options import (
    add_narrowing_options,
    add_open_options,
    add_trivy_options,
    narrowing_options,
)
from imageaudit.errors import UsageError
from imageaudit.helptext import add_command

INPUTS = """\
inputs (any mix):
  FILE.list | https://HOST/image.list   a HEPiX image list, plain or S/MIME signed; every image
                                        is fetched and checked against its sl:checksum:sha512
  catalogue:URL[/vo/NAME]               every image version the catalogue holds (of one VO)
  oci://REGISTRY/REPO:TAG | @sha256:…   a VM image held as an OCI artefact
  DIR                                   every VM disk, OVA and container archive in DIR
  IMAGE                                 one image, as for imageaudit scan
"""
EXIT_CODES = {
    0: "every image reached --require (or none was required)",
    1: "an image could not be audited, under --strict",
    2: "usage or configuration error",
    3: "an image is below --require (an image that could not be audited has no level)",
}
EXAMPLES = [
    "imageaudit batch out/example.list --require standard --summary out/batch.csv",
    "imageaudit batch catalogue:https://catalogue.example.org/vo/biomed --publish "
    "--catalogue https://catalogue.example.org",
]


def _size(text: str) -> int:
    units = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    try:
        if t and t[-1] in units:
            return int(float(t[:-1]) * units[t[-1]])
        return int(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 512M, 20G)") from None


def _cache_default() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or ""
    root = Path(base) if Path(base).is_absolute() else Path.home() / ".cache"
    return root / "imageaudit" / "batch"


def add_parsers(subparsers: Any) -> None:
    from imageaudit.cli.publish import add_scan_arguments

    p = add_command(
        subparsers, "batch",
        "audit many images: image lists, the catalogue, OCI artefacts, directories",
        exit_codes=EXIT_CODES, examples=EXAMPLES, notes=INPUTS,
    )
    p.add_argument("input", nargs="+", help="image lists, catalogue:URL, oci://, dirs, images")
    p.add_argument("--require", metavar="LEVEL", help="exit 3 unless every image reaches LEVEL")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 when an image could not be audited")
    p.add_argument("--output-dir", default="batch-out", metavar="DIR",
                   help="per-image reports and the batch page index.html (default: %(default)s)")
    p.add_argument("--summary", action="append", default=[], metavar="FILE",
                   help="also write the summary to FILE.json or FILE.csv (repeatable)")
    p.add_argument("--rules", metavar="DIR", help="rules directory (default: the built-in rules)")
    p.add_argument("--levels", metavar="FILE", help="levels file (default: rules/levels.yaml)")
    p.add_argument("--waivers", metavar="FILE")
    p.add_argument("--feeds", metavar="DIR", help="advisory/update feed snapshot")
    p.add_argument("--ioc", metavar="FILE", action="append", default=[],
                   help="indicators of compromise to match every image's files against "
                        "(MISP event JSON, MISP feed directory or CSV; repeatable)")
    p.add_argument("--yara", metavar="DIR",
                   help="YARA rules (a .yar/.yara file or a directory of them) to match every "
                        "image's executables, libraries and scripts against")
    add_trivy_options(p)
    add_narrowing_options(p)
    p.add_argument("--expiry-days", type=int, default=30, help="certification validity (days)")
    p.add_argument("--verify-with", metavar="CA_DIR",
                   help="demand signed image lists, verified against this hashed CA directory")
    p.add_argument("--scheduler", metavar="tcp://HOST:8786",
                   help="an existing Dask scheduler (default: a local cluster)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="local cluster size (default: one worker process per core)")
    p.add_argument("--cache-dir", metavar="DIR",
                   help="where fetched images are kept (default: $XDG_CACHE_HOME/imageaudit/batch)")
    p.add_argument("--max-image-size", type=_size, default="64G", metavar="SIZE",
                   help="refuse to fetch an image larger than this (default: %(default)s)")
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="per image: stop an audit that takes longer (default: none)")
    p.add_argument("--memory", type=_size, metavar="SIZE",
                   help="per image: stop an audit whose processes use more (e.g. 4G)")
    p.add_argument("--force", action="store_true",
                   help="audit again images already audited with these rules, levels and feeds")
    p.add_argument("--attach", action="store_true",
                   help="attach each report to its OCI artefact as a referrer")
    p.add_argument("--insecure-registry", action="store_true",
                   help="talk plain HTTP to OCI registries (a test registry on 127.0.0.1)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    add_open_options(p)
    add_scan_arguments(p)
    p.set_defaults(func=cmd_batch)


class _Lines:
    """One timestamped line per image, for logs and CI."""

    def __init__(self) -> None:
        self.failures = 0

    def plan(self, total: int, cached: int) -> None:
        print(f"imageaudit: batch of {total} image(s), {cached} already audited", file=sys.stderr,
              flush=True)

    def result(self, result: Any, done: int, total: int) -> None:
        from imageaudit.store import utcnow

        now = utcnow().strftime("%H:%M:%S")
        if result.error:
            self.failures += 1
            what = f"ERROR {result.source}: {result.error}"
        else:
            took = "cached" if result.cached else f"{result.seconds or 0:.1f} s"
            what = f"{result.level} {result.source} ({took})"
        print(f"{now} [{done}/{total}] {what}", file=sys.stderr, flush=True)


class _Bar:
    """A rich progress bar: done/total, images per minute, ETA, failures."""

    def __init__(self, progress: Any) -> None:
        self.progress = progress
        self.task: Any = None
        self.failures = 0

    def plan(self, total: int, cached: int) -> None:
        self.task = self.progress.add_task("auditing", total=total, failures=0, cached=cached)

    def result(self, result: Any, done: int, total: int) -> None:
        if result.error:
            self.failures += 1
        self.progress.update(self.task, completed=done, failures=self.failures)


@contextmanager
def _display(quiet: bool) -> Iterator[Any]:
    if quiet:
        yield None
        return
    if not sys.stderr.isatty():
        yield _Lines()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    class Rate(TextColumn):
        def __init__(self) -> None:
            super().__init__("")

        def render(self, task: Any) -> Any:
            from rich.text import Text

            speed = task.finished_speed or task.speed
            return Text(f"{speed * 60:.1f}/min" if speed else "-/min")

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  Rate(), TextColumn("[red]{task.fields[failures]} failed"),
                  TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                  console=Console(stderr=True)) as progress:
        yield _Bar(progress)


def cmd_batch(args: argparse.Namespace) -> int:
    from imageaudit.batch.run import BatchOptions, exit_code, run_batch
    from imageaudit.batch.summary import BatchMeta, write_csv, write_html, write_json
    from imageaudit.cli.catalogue_options import publish_catalogue

    catalogue = publish_catalogue(args)
    for target in args.summary:
        if Path(target).suffix.lower() not in (".json", ".csv"):
            raise UsageError(f"--summary {target}: name a .json or .csv file")
    if args.verify_with and not Path(args.verify_with).is_dir():
        raise UsageError(f"--verify-with {args.verify_with}: not a directory")
    output_dir = Path(args.output_dir)
    options = BatchOptions(
        inputs=tuple(args.input), output_dir=output_dir,
        cache_dir=Path(args.cache_dir) if args.cache_dir else _cache_default(),
        rules_dir=Path(args.rules) if args.rules else None,
        levels_file=Path(args.levels) if args.levels else None,
        waivers_file=Path(args.waivers) if args.waivers else None,
        feeds_dir=Path(args.feeds) if args.feeds else None, expiry_days=args.expiry_days,
        input_kind=args.input_kind, opener=args.opener, require=args.require,
        verify_with=Path(args.verify_with) if args.verify_with else None,
        store_url=args.store, scheduler=args.scheduler, workers=args.workers, force=args.force,
        timeout=args.timeout, memory_bytes=args.memory, max_image_bytes=args.max_image_size,
        attach=args.attach, insecure_registry=args.insecure_registry,
        ioc_files=tuple(Path(f) for f in args.ioc),
        yara_rules=Path(args.yara) if args.yara else None,
        trivy=args.trivy, trivy_cache=Path(args.trivy_cache) if args.trivy_cache else None,
        trivy_timeout=args.trivy_timeout,
        **narrowing_options(args),  # type: ignore[arg-type]
    )
    with _display(args.quiet) as shown:
        outcome = run_batch(options, on_plan=shown.plan if shown else None,
                            on_result=shown.result if shown else None)
    meta = BatchMeta(
        started=outcome.started, finished=outcome.finished,
        tool_version=outcome.context.tool_version,
        ruleset_version=outcome.context.ruleset_version,
        levels_version=outcome.context.levels_version, feeds=outcome.context.feeds,
        required=args.require, level_names=outcome.level_names, inputs=tuple(args.input),
    )
    write_html(outcome.results, meta, output_dir / "index.html")
    write_json(outcome.results, meta, output_dir / "summary.json")
    for target in args.summary:
        writer = write_csv if Path(target).suffix.lower() == ".csv" else write_json
        writer(outcome.results, meta, Path(target))
    if not args.quiet:
        for note in outcome.notes:
            print(f"note: {note}", file=sys.stderr)
        _print_totals(outcome, args.require, output_dir)
    code = exit_code(outcome, args.require, args.strict)
    if catalogue:
        published = _publish(outcome, args, catalogue)
        return code or published
    return code


def _print_totals(outcome: Any, require: str | None, output_dir: Path) -> None:
    results = outcome.results
    audited = [r for r in results if r.audited]
    cached = sum(1 for r in results if r.cached)
    errors = len(results) - len(audited)
    line = f"imageaudit: {len(results)} image(s): {len(audited)} audited ({cached} cached)"
    if require:
        below = sum(1 for r in audited if r.reached_required is False)
        line += f", {below} below {require}"
    line += f", {errors} could not be audited; {output_dir / 'index.html'}"
    print(line, file=sys.stderr)


def _publish(outcome: Any, args: argparse.Namespace, catalogue: str) -> int:
    """Every audited image's report to the catalogue, through the outbox (sent at most once).

    A root filesystem of the batch is audited but not published (no image file, no SHA-512 for
    the catalogue to bind its report to); it is named and the exit code says refused (2)."""
    from imageaudit.cli.publish import EXIT_REFUSED, publish_reports, unpublishable_reports
    from imageaudit.store import ResultsStore

    reports = []
    sources = []
    refused = False
    with ResultsStore.open(args.store) as store:
        for result in outcome.results:
            if result.report_id is None:
                continue
            stored = store.get_report(result.report_id)
            if stored is None:
                continue
            refusals = unpublishable_reports([stored.report], [result.source])
            for refusal in refusals:
                print(f"imageaudit: not published: {refusal}", file=sys.stderr)
            refused = refused or bool(refusals)
            if not refusals:
                reports.append(stored.report)
                sources.append(result.source)
    code = publish_reports(reports, catalogue, args.token, args.store, sources=sources,
                           signing_key=args.signing_key) if reports else 0
    return max(code, EXIT_REFUSED) if refused else code
