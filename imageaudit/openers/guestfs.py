"""Open VM disk images (qcow2, raw, vmdk, vdi, vhdx, vpc) through libguestfs, read-only.

The format is decided by :mod:`imageaudit.openers.formatcheck` first and always passed
explicitly; drives are added ``readonly=True``; networking is off; nothing from the guest
is run (no ``sh``, ``command`` or icon APIs). Filesystem parsing stays inside the appliance.

A launch costs tens of seconds under TCG, so one :class:`Appliance` can carry several drives
and serve several :class:`GuestfsFS` views; a view re-mounts its filesystems when another
view used the appliance last (a handful of round trips). The metadata tree is built in bulk
at open (see :mod:`imageaudit.openers.guestfs_tree`); :meth:`GuestfsFS.prefetch` reads small
files in advance; every read is a bounded ``pread``.

Every launch and call is bounded (see :mod:`imageaudit.openers.kvm`): a launch that overruns
under KVM is retried under TCG; a call that overruns stops the appliance and fails.

Specs followed: guestfs(3), guestfs-security(1), guestfs-performance(1).
"""

from __future__ import annotations

import logging
import tempfile
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imageaudit.imagefs import (
    DEFAULT_READ_LIMIT,
    DEFAULT_WALK_LIMIT,
    FileType,
    ImageFSError,
    OpenInfo,
    TreeImageFS,
)
from imageaudit.openers import guestfs_tree as gt
from imageaudit.openers import kvm
from imageaudit.openers.formatcheck import DEFAULT_MAX_VIRTUAL_SIZE, check_image

LOG = logging.getLogger(__name__)

MEMSIZE_MB = 1024
PREAD_CHUNK = 1024 * 1024
PREFETCH_BUDGET = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Drive:
    """One disk for the appliance: what qemu opens, in which (checked) format."""

    path: str
    format: str
    source: str
    virtual_size: int = 0


def _new_handle(drives: Sequence[Drive], tcg: bool) -> gt.Guest:
    try:
        import guestfs  # type: ignore[import-not-found]
    except ImportError as exc:
        raise ImageFSError("libguestfs Python bindings (python3-guestfs) are missing") from exc
    g = guestfs.GuestFS(python_return_dict=True)
    if LOG.isEnabledFor(logging.DEBUG):
        _log_appliance(g, guestfs)
    g.set_network(False)
    g.set_memsize(MEMSIZE_MB)
    g.set_identifier("imageaudit")
    # Drives are read-only: the sync + umount-all that autosync runs at close has nothing to
    # save and costs a round trip and an exec in the appliance (about a second under TCG).
    g.set_autosync(False)
    if tcg:
        g.set_backend_settings(["force_tcg"])
    for drive in drives:
        g.add_drive_opts(drive.path, format=drive.format, readonly=True)
    return g


def _log_appliance(g: Any, guestfs: Any) -> None:
    """``--debug``: libguestfs' own messages, its API trace and the appliance's console log
    go to the ``imageaudit.openers.guestfs`` logger instead of libguestfs' stderr."""
    events = (guestfs.EVENT_APPLIANCE | guestfs.EVENT_LIBRARY | guestfs.EVENT_WARNING
              | guestfs.EVENT_TRACE)
    names = {guestfs.EVENT_APPLIANCE: "appliance", guestfs.EVENT_LIBRARY: "libguestfs",
             guestfs.EVENT_WARNING: "warning", guestfs.EVENT_TRACE: "trace"}

    def forward(event: int, _handle: int, buf: bytes | str, _array: Any) -> None:
        text = buf.decode("utf-8", "replace") if isinstance(buf, bytes) else str(buf)
        for line in text.splitlines():
            if line.strip():
                LOG.debug("%s: %s", names.get(event, "event"), line.rstrip())

    g.set_event_callback(forward, events)
    g.set_verbose(True)
    g.set_trace(True)


class Appliance:
    """A launched libguestfs appliance holding one or more read-only drives."""

    def __init__(self, drives: Sequence[Drive], bounds: kvm.Bounds | None = None) -> None:
        if not drives:
            raise ImageFSError("no drive to open")
        self.drives = tuple(drives)
        self.bounds = bounds or kvm.Bounds.from_env()
        self.notes: list[str] = []
        self.on_close: list[Callable[[], None]] = []
        self.g: gt.Guest = None
        self.current: GuestfsFS | None = None
        self.users = 0
        # Device listings run udevadm/blkid/lvm inside the appliance (seconds under TCG) and
        # inspect_os has already probed every filesystem: ask only when a view needs them.
        self._listings: dict[str, Any] = {}
        self._drive_cache: dict[str, int | None] = {}
        self.probe_s = 0.0
        self.dog = kvm.Watchdog()
        # Interpreter exit without close() (an uncaught exception) still stops qemu and
        # removes libguestfs' temporary directories.
        self._handles: list[Any] = []
        self._finalizer = weakref.finalize(self, kvm.close_all, self._handles, self.dog)
        try:
            self._launch()
        except BaseException:
            self.close()
            raise

    def _launch(self) -> None:
        start = time.monotonic()
        raw, self.tcg, fallback = kvm.launch(
            lambda tcg: _new_handle(self.drives, tcg), kvm.want_tcg(), self.bounds, self.dog)
        self._handles.append(raw)
        self.dog.pid = raw.get_pid()
        self.g = kvm.BoundedGuest(raw, self.dog, self.bounds.call)
        note = kvm.tcg_note(self.tcg, fallback)
        if note is not None:
            self.notes.append(note)
        self.launch_s = time.monotonic() - start
        start = time.monotonic()
        self.roots: list[str] = sorted(self.g.inspect_os())
        self.inspect_s = time.monotonic() - start

    def _listing(self, api: str) -> Any:
        """The answer of a device-listing API, asked once and timed as probing."""
        if api not in self._listings:
            start = time.monotonic()
            self._listings[api] = getattr(self.g, api)()
            self.probe_s += time.monotonic() - start
        return self._listings[api]

    @property
    def devices(self) -> list[str]:
        """Whole disks as the appliance names them, in drive order."""
        return list(self._listing("list_devices"))

    @property
    def filesystems(self) -> dict[str, str]:
        """Every filesystem on every drive: device -> type."""
        return dict(self._listing("list_filesystems"))

    @property
    def partitions(self) -> list[str]:
        """Every partition on every drive."""
        return list(self._listing("list_partitions"))

    def close(self) -> None:
        """Stop the appliance and run the ``on_close`` hooks; safe to call twice."""
        self.g = None
        try:
            self._finalizer()
        finally:
            while self.on_close:
                self.on_close.pop()()

    def drive_of(self, device: str) -> int | None:
        """Index of the drive holding ``device`` (partition, whole disk or LVM volume)."""
        if len(self.drives) == 1:
            return 0  # the appliance's own disk is never listed: all devices are the drive's
        if device not in self._drive_cache:
            self._drive_cache[device] = self._find_drive(device)
        return self._drive_cache[device]

    def _find_drive(self, device: str) -> int | None:
        g = self.g
        if device in self.devices:
            return self.devices.index(device)
        try:
            return self.devices.index(g.part_to_dev(device))
        except (RuntimeError, ValueError):
            pass
        try:
            vg = g.lvm_canonical_lv_name(device).split("/")[2]
            uuids = {u.replace("-", "") for u in g.vgpvuuids(vg)}
        except (RuntimeError, IndexError):
            return None
        for pv in g.pvs_full():
            if pv["pv_uuid"].replace("-", "") in uuids:
                return self.drive_of(pv["pv_name"])
        return None


class GuestfsFS(TreeImageFS):
    """One drive of an :class:`Appliance` seen as the root filesystem of its OS."""

    def __init__(self, appliance: Appliance, index: int = 0,
                 max_entries: int = DEFAULT_WALK_LIMIT, whole: bool = False) -> None:
        drive = appliance.drives[index]
        super().__init__(OpenInfo(kind="vm", format=drive.format, source=drive.source))
        self.app = appliance
        self.index = index
        self.whole = whole  # every drive is one machine (a multi-disk OVA)
        self._cache: dict[str, bytes] = {}
        self.info.notes.extend(appliance.notes)
        appliance.users += 1
        g = appliance.g
        mine = [r for r in appliance.roots if self._mine(r)]
        self._plan: list[tuple[str, str]]
        if mine:
            self._plan = self._own_devices(gt.mount_plan(g, mine[0]), mine[0])
            if len(mine) > 1:
                self.info.notes.append(
                    f"image holds {len(mine)} operating systems; audited {mine[0]}, "
                    f"not {', '.join(mine[1:])}"
                )
        else:
            usable = [d for d, t in self._ours().items() if t not in ("swap", "unknown", "")]
            best = gt.largest_filesystem(g, usable)
            if best is None:
                raise ImageFSError(f"{drive.source}: no operating system and no filesystem found")
            self._plan = [("/", best)]
            self.info.notes.append(f"no operating system found; mounted largest filesystem {best}")
        self.mounted = self._mount()
        start = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="imageaudit-find0-") as tmp:
            counts = gt.build_tree(g, Path(tmp) / "names", max_entries, self.nodes, self.children)
        walk_s = time.monotonic() - start
        if counts["undecodable"]:
            self.info.notes.append(f"{counts['undecodable']} entries with non-UTF-8 names skipped")
        if counts["cut"]:
            self.info.notes.append(f"tree cut at {max_entries} entries")
        start = time.monotonic()
        parts, ours = self._layout(mine)
        appliance.probe_s += time.monotonic() - start
        self.info.details.update({
            "partitions": parts,
            "filesystems": ours,
            "mountpoints": dict(self.mounted),
            "os roots": mine,
            "tcg": appliance.tcg,
            "launch_s": round(appliance.launch_s, 3),
            "inspect_s": round(appliance.inspect_s, 3),
            "probe_s": round(appliance.probe_s, 3),
            "walk_s": round(walk_s, 3),
            "walk_calls": counts["calls"],
            "virtual_size": drive.virtual_size,
        })

    def _mine(self, device: str) -> bool:
        return self.whole or self.app.drive_of(device) == self.index

    def _ours(self) -> dict[str, str]:
        return {d: t for d, t in self.app.filesystems.items() if self._mine(d)}

    def _layout(self, mine: list[str]) -> tuple[list[str], dict[str, str]]:
        """(partitions, filesystem -> type) of this drive, for the open details.

        With one drive and an OS found, the filesystems are those inspection tied to the OS
        (fstab), typed one blkid each: ``list_filesystems`` would probe every device and run
        ``lvm`` again, seconds under TCG, after ``inspect_os`` has just done so.
        """
        parts = [p for p in self.app.partitions if self._mine(p)]
        if len(self.app.drives) > 1 or not mine:
            return parts, self._ours()
        g = self.app.g
        filesystems: dict[str, str] = {}
        for device in sorted(g.inspect_get_filesystems(mine[0])):
            try:
                filesystems[device] = g.vfs_type(device)
            except RuntimeError:
                filesystems[device] = "unknown"
        return parts, filesystems

    def _own_devices(self, plan: list[tuple[str, str]], root: str) -> list[tuple[str, str]]:
        """Keep the mount plan on this drive.

        With several drives in one appliance, a ``LABEL=``/``UUID=`` in fstab can resolve to
        a twin filesystem on another drive; swap in the twin on our drive, or drop the mount.
        """
        g = self.app.g
        out: list[tuple[str, str]] = []
        ours: dict[str, str] | None = None
        for mountpoint, device in plan:
            if self._mine(device):
                out.append((mountpoint, device))
                continue
            if mountpoint == "/":
                out.append(("/", root))
                continue
            key = gt.fs_key(g, device)
            ours = self._ours() if ours is None else ours
            twins = [d for d in ours if key is not None and gt.fs_key(g, d) == key]
            if len(twins) == 1:
                out.append((mountpoint, twins[0]))
            else:
                self.info.notes.append(f"{mountpoint}: {device} is not on this disk; not mounted")
        return out

    def _mount(self) -> dict[str, str]:
        g = self.app.g
        if self.app.current is not None:
            g.umount_all()
        self.app.current = self
        return gt.mount_all(g, self._plan, self.info.notes.append)

    def _ensure_mounted(self) -> None:
        if self.app.g is None:
            raise ImageFSError(f"{self.info.source}: the appliance is closed")
        if self.app.current is not self:
            self._mount()

    def close(self) -> None:
        if self.app.g is None or self.index < 0:
            return
        self.index = -1
        self.app.users -= 1
        if self.app.current is self:
            self.app.current = None
        if self.app.users <= 0:
            self.app.close()

    def _pread(self, path: str, limit: int, offset: int) -> bytes:
        self._ensure_mounted()
        chunks: list[bytes] = []
        pos, remaining = offset, limit
        while remaining > 0:
            try:
                chunk = self.app.g.pread(path, min(remaining, PREAD_CHUNK), pos)
            except RuntimeError as exc:
                raise ImageFSError(f"{path}: cannot read: {exc}") from exc
            except kvm.ApplianceStopped as exc:
                raise kvm.ApplianceStopped(f"{path}: cannot read: {exc}") from exc
            except kvm.ApplianceTimeout as exc:
                raise kvm.ApplianceTimeout(f"{path}: cannot read: {exc}") from exc
            if not chunk:
                break
            chunks.append(chunk)
            pos += len(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def _read_canonical(self, path: str, limit: int, offset: int = 0) -> bytes:
        cached = self._cache.get(path)
        if cached is not None:
            st = self.nodes.get(path)
            complete = st is not None and len(cached) >= st.size
            if offset + limit <= len(cached) or complete:
                return cached[offset: offset + limit]
        return self._pread(path, limit, offset)

    def prefetch(self, patterns: Iterable[str], limit: int = DEFAULT_READ_LIMIT) -> None:
        """Read every regular file matching the in-image globs now (bounded, in one pass)."""
        start = time.monotonic()
        budget = PREFETCH_BUDGET
        count = 0
        for pattern in patterns:
            for match in self.glob(pattern):
                try:
                    canon = self.resolve(match)
                except ImageFSError:
                    continue
                st = self.nodes.get(canon)
                if st is None or st.type is not FileType.REGULAR or canon in self._cache:
                    continue
                want = min(st.size, limit)
                if want > budget:
                    continue
                budget -= want
                try:
                    self._cache[canon] = self._pread(canon, want, 0) if want else b""
                except ImageFSError:
                    continue  # the collector's own read fails again and marks its facts
                count += 1
        spent = time.monotonic() - start
        self.info.details["prefetch_s"] = round(
            float(self.info.details.get("prefetch_s", 0.0)) + spent, 3  # type: ignore[arg-type]
        )
        self.info.details["prefetch_files"] = int(
            self.info.details.get("prefetch_files", 0)) + count  # type: ignore[call-overload]


def check_drive(path: str | Path, max_virtual_size: int = DEFAULT_MAX_VIRTUAL_SIZE) -> Drive:
    """Format-check ``path`` and describe it as a :class:`Drive`."""
    info = check_image(path, max_virtual_size=max_virtual_size)
    return Drive(path=str(path), format=info.format, source=str(path),
                 virtual_size=info.virtual_size)


def open_vms(paths: Sequence[str | Path],
             max_virtual_size: int = DEFAULT_MAX_VIRTUAL_SIZE) -> list[GuestfsFS]:
    """Open several disks in one appliance (one launch); close every view to stop it."""
    drives = [check_drive(p, max_virtual_size) for p in paths]
    return open_drives(drives)


def open_drives(drives: Sequence[Drive]) -> list[GuestfsFS]:
    """Views over already checked drives, sharing one appliance."""
    app = Appliance(drives)
    views: list[GuestfsFS] = []
    try:
        for i in range(len(drives)):
            views.append(GuestfsFS(app, i))
    except BaseException:
        for v in views:
            v.close()
        app.close()
        raise
    return views
