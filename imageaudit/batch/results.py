"""What a batch found for one image: the row every output of a batch (summary JSON and CSV, the
HTML page, the progress lines) is made from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ImageResult:
    """One image of a batch: its level, or the reason it could not be audited.

    ``source`` is what the user or the image list named (a path, a URL, ``oci://…``);
    ``inputs`` every batch input that named the same image (two lists sharing an image give one
    result naming both). ``counts`` is the number of findings per status (``Report.counts()``),
    ``failed`` the FAIL findings per severity. ``reports`` maps an output format to the report
    file written for it, relative to the batch's output directory. ``cached`` says the result
    was taken from an earlier run (same image, rules, levels, feeds and tool version).
    """

    source: str
    inputs: tuple[str, ...]
    sha512: str | None = None
    level: str | None = None
    counts: Mapping[str, int] = field(default_factory=dict)
    failed: Mapping[str, int] = field(default_factory=dict)
    error: str | None = None
    identifier: str | None = None
    vo: str | None = None
    title: str | None = None
    report_id: str | None = None
    reports: Mapping[str, str] = field(default_factory=dict)
    cached: bool = False
    seconds: float | None = None
    reached_required: bool | None = None

    @property
    def audited(self) -> bool:
        return self.error is None and self.level is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "inputs": list(self.inputs),
            "identifier": self.identifier,
            "vo": self.vo,
            "title": self.title,
            "sha512": self.sha512,
            "level": self.level,
            "reached_required": self.reached_required,
            "counts": dict(self.counts),
            "failed": dict(self.failed),
            "error": self.error,
            "report_id": self.report_id,
            "reports": dict(self.reports),
            "cached": self.cached,
            "seconds": self.seconds,
        }


__all__ = ["ImageResult"]
