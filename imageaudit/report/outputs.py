"""Where a scan's reports go: files named by image, one document on stdout, a directory.

Each image's files are written as soon as that image is done, so a long run that is stopped
keeps what it finished. With several images, ``-o FILE`` becomes one file per image named
``FILE``'s stem, the image's name and ``FILE``'s suffix (``scan.sarif`` ->
``scan.example-good.sarif``); ``--format jsonl`` is the exception: one file, one report per
line. On stdout several images still make one valid document: a JSON array of the reports,
JSON Lines, or one SARIF log with one run per image.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

# What -o's suffix says the format is, when --format does not.
FORMAT_OF_SUFFIX: dict[str, str] = {
    ".json": "json", ".jsonl": "jsonl", ".sarif": "sarif", ".xml": "junit",
    ".html": "html", ".htm": "html", ".md": "markdown", ".txt": "text",
}
# The suffix of a format's files in --output-dir.
SUFFIX_OF_FORMAT: dict[str, str] = {
    "json": ".json", "jsonl": ".jsonl", "sarif": ".sarif", "junit": ".xml",
    "html": ".html", "markdown": ".md", "text": ".txt",
}
# Formats whose documents cannot be joined on stdout (one XML or HTML document per image).
NOT_JOINABLE = ("junit", "html")
STDOUT = "-"


def infer_format(target: str) -> str:
    """The format ``-o target`` asks for by its suffix; ``ValueError`` when it says none."""
    fmt = FORMAT_OF_SUFFIX.get(Path(target).suffix.lower())
    if fmt is None:
        known = ", ".join(FORMAT_OF_SUFFIX)
        raise ValueError(f"-o {target}: cannot tell the format from its name (known suffixes: "
                         f"{known}); add --format")
    return fmt


def image_name(spec: str) -> str:
    """A file-name-safe name for the image ``spec`` (``out/example-good.qcow2`` ->
    ``example-good``, ``docker://debian:12`` -> ``debian_12``)."""
    text = spec.split("://", 1)[1] if "://" in spec else spec
    text = text.rstrip("/") or "root"
    name = text.rsplit("/", 1)[-1]
    for suffix in (".tar.gz", ".tar", ".qcow2", ".img", ".raw", ".vmdk", ".vdi", ".vhd",
                   ".vhdx", ".ova", ".gz"):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    return re.sub(r"[^A-Za-z0-9._+-]", "_", name).strip(".") or "image"


def unique_names(specs: Sequence[str]) -> dict[str, str]:
    """Each image's name for its files; a repeated name gets ``-2``, ``-3``..."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for spec in specs:
        if spec in names:
            continue
        base = name = image_name(spec)
        n = 1
        while name in taken:
            n += 1
            name = f"{base}-{n}"
        taken.add(name)
        names[spec] = name
    return names


@dataclass(frozen=True)
class Finished:
    """One audited image as the writer needs it: its JSON, and its rendering per format."""

    spec: str
    data: Mapping[str, Any]
    render: Callable[[str], str]


class OutputWriter:
    """Writes every requested output of each image as it finishes, and stdout at the end."""

    def __init__(self, pairs: Sequence[tuple[str, str]], specs: Sequence[str],
                 output_dir: Path | None = None, dir_formats: Sequence[str] = (),
                 stdout: TextIO | None = None,
                 show_text: Callable[[Finished], None] | None = None) -> None:
        self.pairs = list(pairs)
        self.multi = len(specs) > 1
        self.names = unique_names(specs)
        self.output_dir = output_dir
        self.dir_formats = list(dir_formats)
        self.stdout = stdout or sys.stdout
        self.show_text = show_text
        self._held: dict[str, list[str]] = {}  # stdout documents joined at the end
        self._started: set[str] = set()  # jsonl files begun in this run

    def refusals(self) -> list[str]:
        """Why these outputs cannot be written for these images (checked before any scan)."""
        if not self.multi:
            return []
        return [f"--format {fmt}: {len(self.names)} images make {len(self.names)} documents; "
                "name a file with -o (one per image) or use --output-dir"
                for fmt, target in self.pairs if target == STDOUT and fmt in NOT_JOINABLE]

    def path_for(self, spec: str, target: str, fmt: str) -> Path:
        """The file image ``spec``'s ``fmt`` output goes to for ``-o target``."""
        path = Path(target)
        if not self.multi or fmt == "jsonl":
            return path
        return path.with_name(f"{path.stem}.{self.names[spec]}{path.suffix}")

    def write(self, done: Finished) -> list[Path]:
        """Write ``done``'s files now; keep its stdout documents for :meth:`finish`."""
        written: list[Path] = []
        for fmt, target in self.pairs:
            if target == STDOUT:
                self._to_stdout(done, fmt)
                continue
            path = self.path_for(done.spec, target, fmt)
            if fmt == "jsonl":
                mode = "a" if str(path) in self._started else "w"
                self._started.add(str(path))
                with path.open(mode, encoding="utf-8") as out:
                    out.write(_json_line(done.data))
            else:
                path.write_text(done.render(fmt), encoding="utf-8")
            written.append(path)
        if self.output_dir is not None:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            for fmt in self.dir_formats:
                path = self.output_dir / f"{self.names[done.spec]}{SUFFIX_OF_FORMAT[fmt]}"
                text = _json_line(done.data) if fmt == "jsonl" else done.render(fmt)
                path.write_text(text, encoding="utf-8")
                written.append(path)
        return written

    def _to_stdout(self, done: Finished, fmt: str) -> None:
        if fmt == "jsonl":
            self._emit(_json_line(done.data))
        elif fmt == "text" and self.show_text is not None:
            self.show_text(done)
            self.stdout.flush()
        elif fmt in ("json", "sarif") and self.multi:
            self._held.setdefault(fmt, []).append(done.render(fmt))
        else:
            self._emit(done.render(fmt))

    def finish(self) -> None:
        """The joined stdout documents: a JSON array of the reports, one SARIF log."""
        for fmt, texts in self._held.items():
            docs = [json.loads(t) for t in texts]
            joined: Any = docs if fmt == "json" else _join_sarif(docs)
            self._emit(json.dumps(joined, indent=2, ensure_ascii=False))
        self._held.clear()

    def _emit(self, text: str) -> None:
        self.stdout.write(text if text.endswith("\n") else text + "\n")
        self.stdout.flush()



def _json_line(data: Mapping[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n"


def _join_sarif(logs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One SARIF log holding every image's runs (SARIF 2.1.0 allows any number of runs)."""
    if not logs:
        return {}
    joined = dict(logs[0])
    joined["runs"] = [run for log in logs for run in log.get("runs", [])]
    return joined


__all__ = [
    "FORMAT_OF_SUFFIX", "STDOUT", "SUFFIX_OF_FORMAT", "Finished", "OutputWriter",
    "image_name", "infer_format", "unique_names",
]
