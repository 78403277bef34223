"""The parser child: ``python -I -m imageaudit.openers.direct.child``.

It reads one configuration frame on stdin (the image fd it inherited, the byte range, the
format the header check decided, the caps), imports everything the parse needs, confines
itself (:mod:`.confine`), then opens the container, the volumes and the filesystems, walks
the tree and sends it, and serves bounded reads by handle until stdin closes. Every error
becomes one ``E`` (or ``U``: unsupported) frame and exit status 2; nothing is written but to
stdout and stderr.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time


def _preload() -> None:
    """Import every module a parse may reach, before the seccomp filter forbids ``open``."""
    import encodings.utf_16_le  # noqa: F401 - GPT partition names
    import io  # noqa: F401
    import re  # noqa: F401
    import zlib  # noqa: F401

    import pyfsext  # type: ignore[import-not-found]  # noqa: F401
    import pyfsxfs  # type: ignore[import-not-found]  # noqa: F401
    import pyvhdi  # type: ignore[import-not-found]  # noqa: F401
    import pyvmdk  # type: ignore[import-not-found]  # noqa: F401
    import pyvslvm  # type: ignore[import-not-found]  # noqa: F401
    import zstandard

    zstandard.ZstdDecompressor()  # loads the C backend now
    b"x\0".decode("utf-16-le", "replace")
    b"x".decode("utf-8", "replace")


def _send(kind: bytes, payload: bytes) -> None:
    from imageaudit.openers.direct import protocol as proto

    proto.write_all(1, proto.frame(kind, payload))


def _error(kind: bytes, message: str) -> None:
    _send(kind, message.encode("utf-8", "replace")[:4096])


def main() -> int:
    from imageaudit.openers.direct import confine
    from imageaudit.openers.direct import protocol as proto
    from imageaudit.openers.direct.blockdev import DiskError, FdWindow, Unsupported
    from imageaudit.openers.direct.containers import open_container
    from imageaudit.openers.direct.filesystems import Filesystem
    from imageaudit.openers.direct.volumes import Volume, discover
    from imageaudit.openers.direct.walk import plan_mounts, walk

    reader = proto.FrameReader(0)
    first = reader.next()
    if first is None or first[0] != b"C":
        return 2
    config = json.loads(first[1])
    settings = confine.Settings(**config["confine"])
    try:
        _preload()
        seccomp_module = confine.load_seccomp()  # imported now, used after the other steps
        del seccomp_module
        applied = confine.confine(settings)
        confine.finish(settings, applied)
    except Exception as exc:
        _error(b"E", f"cannot confine the parser: {type(exc).__name__}: {exc}")
        return 2
    start = time.monotonic()
    fd = int(config["fd"])
    max_bytes = int(config["max_read_bytes"])
    try:
        window = FdWindow(fd, int(config["offset"]), int(config["length"]))
        disk = open_container(config["format"], window)
        layout = discover(disk)
        filesystems: dict[str, Filesystem] = {}

        def open_fs(vol: Volume) -> Filesystem:
            if vol.device not in filesystems:
                filesystems[vol.device] = Filesystem(vol)
            return filesystems[vol.device]

        plan = plan_mounts(layout, open_fs)
        by_device = {v.device: v for v in layout.volumes}
        for device in plan.mounts.values():
            open_fs(by_device[device])
        open_s = time.monotonic() - start
        start = time.monotonic()
        state = walk(plan, filesystems, int(config["max_entries"]),
                     lambda batch: _send(b"T", batch))
        walk_s = time.monotonic() - start
    except Unsupported as exc:
        _error(b"U", str(exc))
        return 2
    except MemoryError:
        _error(b"E", f"the parser ran out of memory (address-space limit of "
                     f"{settings.address_space} bytes)")
        return 2
    except (DiskError, OSError, ValueError) as exc:
        _error(b"E", str(exc) if isinstance(exc, DiskError) else f"{type(exc).__name__}: {exc}")
        return 2
    notes = [*layout.notes, *plan.notes, *state.notes]
    for count, text in ((state.undecodable, "entries with non-UTF-8 names skipped"),
                        (state.long_names, "entries with over-long names or links skipped"),
                        (state.loops, "directory loops not followed"),
                        (state.unreadable,
                         "entries whose inode could not be read shown as unknown"),
                        (state.too_deep, f"directories deeper than {256} levels not listed")):
        if count:
            notes.append(f"{count} {text}")
    if state.cut:
        notes.append(f"tree cut at {config['max_entries']} entries")
    fstypes = {v.device: v.fstype for v in layout.volumes
               if v.fstype not in ("unknown", "LVM2_member")}
    info = {
        "notes": notes,
        "partitions": layout.partitions,
        "filesystems": fstypes,
        "mountpoints": state.mounted,
        "os roots": plan.roots,
        "partition_table": layout.table,
        "disk_size": disk.size,
        "compressed_clusters": getattr(disk, "compressed_clusters", 0),
        "open_s": round(open_s, 3),
        "walk_s": round(walk_s, 3),
        "entries": state.entries,
        "confinement": applied.as_dict(),
        "confinement_problems": applied.problems,
    }
    _send(b"I", json.dumps(info).encode())
    served = 0
    while True:
        try:
            item = reader.next()
        except proto.ProtocolError:
            return 2
        if item is None:
            return 0
        kind, payload = item
        if kind != b"R":
            _error(b"E", f"unexpected request {kind!r}")
            return 2
        handle, offset, size = proto.decode_read(payload)
        if handle >= len(state.files) or size > proto.MAX_READ_CHUNK:
            _error(b"E", f"bad read request (handle {handle}, {size} bytes)")
            continue
        if served + size > max_bytes:
            _error(b"E", f"over the cap of {max_bytes} bytes read from this image")
            continue
        device, inode = state.files[handle]
        try:
            data = filesystems[device].read(inode, offset, size)
        except (DiskError, OSError, MemoryError) as exc:
            _error(b"E", str(exc))
            continue
        served += len(data)
        _send(b"D", data)


if __name__ == "__main__":
    try:
        code = main()
    except BaseException as exc:  # no traceback: printing one would open source files
        with contextlib.suppress(BaseException):
            _error(b"E", f"parser failed: {type(exc).__name__}: {exc}")
        code = 2
    sys.stdout.flush()
    os._exit(code)
