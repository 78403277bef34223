"""What the package managers record about their files, for the ``integrity`` collector.

:class:`Gather` collects the digests each installed package records for its files in the
code directories (:func:`in_scope`), and what could not be read: dpkg ``md5sums`` (with the
``Conffiles`` of the status file, the ``.list`` files that say which package owns a path
now, and the diversions), distroless ``status.d``, and apk ``Z:`` checksums. rpm's digests
are read by :mod:`imageaudit.facts.integrity_rpm`.

Specs: deb-control(5) (``Conffiles``), dpkg(1) (``info/*.md5sums``, ``*.list``),
dpkg-divert(1) (``diversions``: original, diverted-to and package lines, ``:`` for a local
diversion), apk-tools Apk_spec (``Z:`` is ``Q1`` + base64 SHA-1).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import posixpath
from dataclasses import dataclass
from typing import Literal

from imageaudit.facts.base import CollectContext
from imageaudit.facts.packages import PackagesFacts
from imageaudit.facts.packages import dpkg as dpkg_db
from imageaudit.facts.packages.model import Manager, PackageError
from imageaudit.facts.textlines import glibc_lines
from imageaudit.imagefs import ImageFSError
from imageaudit.model import Source

MAX_EXPECTED = 2_000_000
MAX_LIST_BYTES = 16 * 2**20
MAX_DIVERSIONS_BYTES = 4 * 2**20
MAX_APK_BYTES = 128 * 2**20
MAX_EXAMPLES = 50

DIVERSIONS = "/var/lib/dpkg/diversions"
APK_INSTALLED = "/lib/apk/db/installed"
CODE_DIRS = ("/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/libexec", "/lib", "/lib32",
             "/lib64", "/libx32", "/usr/lib", "/usr/lib32", "/usr/lib64", "/usr/libx32")
PROGRAM_DIRS = ("/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/libexec")
# Loaded into devices, not run by the system; often hundreds of MiB.
EXCLUDED_DIRS = ("/lib/firmware", "/usr/lib/firmware")
KERNEL_MODULE_ENDINGS = (".ko", ".ko.xz", ".ko.zst", ".ko.gz")

Kind = Literal["program", "library", "PAM module", "kernel module"]
# Why something was not compared: a digest list not read whole (``database``), a path that
# could not be looked up (``lookup``: whether it is there is unknown too), a file not read
# (``read``: over a cap, unreadable).
Stage = Literal["database", "lookup", "read"]


@dataclass(frozen=True, slots=True)
class Unverified:
    """A file or digest list that could not be compared, and why."""

    path: str
    reason: str
    stage: Stage
    package: str | None = None



@dataclass(frozen=True, slots=True)
class Expected:
    """One digest a package records for a path."""

    path: str
    package: str
    manager: Manager
    algorithm: str  # hashlib name
    digest: str  # lower-case hex
    source: Source


class Gather:
    """What the manager readers hand over: expected digests, and why some are not."""

    def __init__(self, ctx: CollectContext) -> None:
        self.ctx = ctx
        self.expected: list[Expected] = []
        self.databases: list[str] = []
        self.packages = 0
        self.unverified: list[Unverified] = []
        self.unverified_count = 0
        self.presence_unverified = 0
        self.skipped: dict[str, int] = {}
        # listed path -> the name dpkg moved it to, and the package allowed to keep it
        self.diverted: dict[str, tuple[str, str]] = {}

    def skip(self, why: str, count: int = 1) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + count

    def not_verified(self, path: str, reason: str, stage: Stage, package: str | None) -> None:
        self.unverified_count += 1
        if stage != "read":
            self.presence_unverified += 1
        if len(self.unverified) < MAX_EXAMPLES:
            self.unverified.append(Unverified(path, reason, stage, package))

    def expect(self, path: str, package: str, manager: Manager, algorithm: str, digest: str,
               source: Source) -> None:
        """Record that ``package`` says ``path`` has ``digest`` (kept when in scope)."""
        self.add(Expected(path, package, manager, algorithm, digest, source))

    def add(self, entry: Expected) -> None:
        if not in_scope(posixpath.normpath(entry.path)):
            self.skip("outside the code directories")
            return
        if len(self.expected) >= MAX_EXPECTED:
            self.not_verified(str(entry.source), f"more than {MAX_EXPECTED} recorded digests",
                              "database", entry.package)
            return
        self.expected.append(entry)


def in_scope(path: str) -> bool:
    return _under(path, CODE_DIRS) and not _under(path, EXCLUDED_DIRS)


def _under(path: str, tops: tuple[str, ...]) -> bool:
    return any(path == t or path.startswith(t + "/") for t in tops)


def kind_of(path: str) -> Kind:
    if _under(path, PROGRAM_DIRS):
        return "program"
    if "/security/" in path:
        return "PAM module"
    if "/modules/" in path and path.endswith(KERNEL_MODULE_ENDINGS):
        return "kernel module"
    return "library"


# -- dpkg -----------------------------------------------------------------------------------


def _read_whole(g: Gather, path: str, limit: int, package: str | None,
                required: bool = False) -> str | None:
    """A digest list's text; a list cut or unreadable (or, ``required``, absent) is recorded
    as unverified."""
    try:
        result = g.ctx.fs.read(path, limit)
    except FileNotFoundError as exc:
        if required:
            g.not_verified(path, f"cannot be read: {exc}", "database", package)
        return None
    except (ImageFSError, OSError) as exc:
        g.not_verified(path, f"cannot be read: {exc}", "database", package)
        return None
    if result.truncated:
        g.not_verified(path, f"larger than {limit} bytes", "database", package)
        return None
    return result.text()


def _diversions(g: Gather) -> None:
    text = _read_whole(g, DIVERSIONS, MAX_DIVERSIONS_BYTES, None)
    if text is None:
        return
    lines = glibc_lines(text)
    for i in range(0, len(lines) - 2, 3):
        g.diverted[lines[i]] = (lines[i + 1], lines[i + 2])


def _md5sums(g: Gather, path: str, package: str, conffiles: frozenset[str],
             owned: frozenset[str] | None) -> None:
    """Expected md5s of one package; ``owned`` (its ``.list``) drops files it lost."""
    text = _read_whole(g, path, MAX_LIST_BYTES, package, required=True)
    if text is None:
        return
    g.databases.append(posixpath.dirname(path))
    g.packages += 1
    for number, line in enumerate(glibc_lines(text), start=1):
        if not line.strip():
            continue
        digest, _, rest = line.partition(" ")
        listed = "/" + rest.lstrip(" *").lstrip("/")
        if len(digest) != 32 or not _is_hex(digest) or listed == "/":
            g.not_verified(f"{path} line {number}", "not an md5sums line", "database", package)
            continue
        if listed in conffiles:
            g.skip("configuration file")
            continue
        if owned is not None and listed not in owned and in_scope(listed):
            g.skip("taken over by another package")
            continue
        g.add(Expected(listed, package, "dpkg", "md5", digest.lower(), Source(path, number)))


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return text.isascii()


def _conffiles(value: str) -> frozenset[str]:
    return frozenset(words[0] for line in value.split("\n") if (words := line.split()))


def read_dpkg(g: Gather, packages: PackagesFacts | None) -> None:
    status = _read_whole(g, dpkg_db.STATUS, dpkg_db.MAX_STATUS_BYTES, None)
    owned_by: dict[tuple[str, str | None], frozenset[str]] = {}
    if packages is not None:
        for known in packages.packages:
            if known.manager == "dpkg" and known.source.path == dpkg_db.STATUS and (
                    known.owned_count):
                owned_by[(known.name, known.arch)] = known.owned_paths
    try:
        infos = set(g.ctx.fs.listdir(dpkg_db.INFO))
    except ImageFSError:
        infos = set()
    if status is not None:
        _diversions(g)
        stanzas, _ = dpkg_db.parse_stanzas(status, dpkg_db.STATUS)
        for stanza in stanzas:
            pkg = dpkg_db.stanza_package(stanza, dpkg_db.STATUS)
            if isinstance(pkg, PackageError) or not pkg.present:
                continue
            for stem in (f"{pkg.name}:{pkg.arch}", pkg.name):
                if f"{stem}.md5sums" not in infos:
                    continue
                owned = owned_by.get((pkg.name, pkg.arch))
                if owned is None and f"{stem}.list" in infos:
                    owned = _read_list(g, f"{dpkg_db.INFO}/{stem}.list", pkg.name)
                conf = _conffiles(stanza.fields.get("Conffiles", ""))
                _md5sums(g, f"{dpkg_db.INFO}/{stem}.md5sums", stem, conf, owned)
                break
    _read_status_d(g)


def _read_list(g: Gather, path: str, package: str) -> frozenset[str] | None:
    text = _read_whole(g, path, MAX_LIST_BYTES, package, required=True)
    if text is None:
        return None
    return frozenset(line for line in glibc_lines(text) if line)


def _read_status_d(g: Gather) -> None:
    try:
        names = g.ctx.fs.listdir(dpkg_db.STATUS_D)
    except ImageFSError:
        return
    present = set(names)
    for name in names[: dpkg_db.MAX_STATUS_D_FILES]:
        if name.endswith(".md5sums") or f"{name}.md5sums" not in present:
            continue
        text = _read_whole(g, f"{dpkg_db.STATUS_D}/{name}", dpkg_db.MAX_STATUS_BYTES, name)
        if text is None:
            continue
        stanzas, _ = dpkg_db.parse_stanzas(text, f"{dpkg_db.STATUS_D}/{name}")
        conf = frozenset().union(*(_conffiles(s.fields.get("Conffiles", "")) for s in stanzas))
        _md5sums(g, f"{dpkg_db.STATUS_D}/{name}.md5sums", name, conf, None)


# -- apk ------------------------------------------------------------------------------------


def _apk_digest(value: str) -> tuple[str, str] | None:
    """(algorithm, hex) of an apk ``Z:`` value: ``Q1`` base64 SHA-1, ``Q2`` SHA-256, hex MD5."""
    algorithm = {"Q1": "sha1", "Q2": "sha256"}.get(value[:2])
    if algorithm is None:
        return ("md5", value.lower()) if len(value) == 32 and _is_hex(value) else None
    try:
        raw = base64.b64decode(value[2:], validate=True)
    except (binascii.Error, ValueError):
        return None
    return (algorithm, raw.hex()) if len(raw) == hashlib.new(algorithm).digest_size else None


def read_apk(g: Gather) -> None:
    text = _read_whole(g, APK_INSTALLED, MAX_APK_BYTES, None)
    if text is None:
        return
    g.databases.append(APK_INSTALLED)
    package = ""
    directory = ""
    current: str | None = None
    for number, line in enumerate(glibc_lines(text), start=1):
        key, value = line[:2], line[2:]
        if not line.strip():
            package, current = "", None
        elif key == "P:":
            package = value
            g.packages += 1
        elif key == "F:":
            directory, current = value.strip("/"), None
        elif key == "R:":
            current = f"/{directory}/{value}" if directory else f"/{value}"
        elif key == "Z:" and current is not None:
            digest = _apk_digest(value)
            if digest is None:
                g.not_verified(f"{APK_INSTALLED} line {number}", "unknown checksum", "database",
                               package or None)
            else:
                g.add(Expected(current, package, "apk", digest[0], digest[1],
                               Source(APK_INSTALLED, number)))
            current = None
