"""Turn a ``tests.scenario`` description into real VM disk images, cached by content hash.

Layouts:

- ``simple``: GPT, one ext4 root partition (``LABEL=auditroot``);
- ``sepvar``: MBR, ext4 root plus a separate ext4 ``/var`` named by ``UUID=`` in fstab;
- ``lvm``: MBR, one LVM PV, VG ``vgaudit``, ext4 LV ``root``;
- ``xfs``: GPT, one XFS root partition (``LABEL=xfsroot``).

ext4 layouts are made without any mount, by the product's example builder
(:func:`imageaudit.example.make_ext4`: ``mkfs.ext4 -d TREE`` on a partition-sized file), copied
into the partitioned disk at the partition offset. LVM and XFS are built inside one
*writable* libguestfs launch on scratch disks this module owns (the host's LVM is never
touched). Each raw disk is then converted by :func:`imageaudit.example.convert`. Images live
in ``$IMAGEAUDIT_TEST_CACHE`` (default ``~/.cache/imageaudit-tests``)/vm, named by a hash of
the scenario, the layout, :data:`BUILDER_VERSION` (this module's layouts) and the source of
:mod:`imageaudit.example` (which writes the tree and builds the filesystems); tests must only
read them.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from imageaudit.example import convert, make_ext4, tree_digest
from tests.builders.debian import _locked, cache_root
from tests.scenario import Dir, Fifo, File, Hardlink, Scenario, Symlink, write_tree

BUILDER_VERSION = "1"
MiB = 1024 * 1024
ROOT_UUID = "6a1d0f7e-1b3c-4e55-9a51-5a0d1e000001"
VAR_UUID = "6a1d0f7e-1b3c-4e55-9a51-5a0d1e000002"
LAYOUTS = ("simple", "sepvar", "lvm", "xfs")
FORMATS: dict[str, tuple[str, tuple[str, ...]]] = {  # name -> qemu-img format, its options
    "raw": ("raw", ()),
    "qcow2": ("qcow2", ()),
    "vmdk": ("vmdk", ("-o", "subformat=monolithicSparse")),
    "vmdk-stream": ("vmdk", ("-o", "subformat=streamOptimized")),
    "vdi": ("vdi", ()),
    "vhdx": ("vhdx", ()),
    "vpc": ("vpc", ()),
}
FSTAB = {
    "simple": "LABEL=auditroot / ext4 defaults 0 1\n",
    "sepvar": f"UUID={ROOT_UUID} / ext4 defaults 0 1\nUUID={VAR_UUID} /var ext4 defaults 0 2\n",
    "lvm": "/dev/vgaudit/root / ext4 defaults 0 1\n",
    "xfs": "LABEL=xfsroot / xfs defaults 0 0\n",
}


def cache_dir() -> Path:
    path = cache_root() / "vm"
    path.mkdir(parents=True, exist_ok=True)
    return path


def with_fstab(scenario: Scenario, layout: str) -> dict[str, object]:
    """The scenario plus the ``/etc/fstab`` the layout needs (unless it brings its own)."""
    full: dict[str, object] = dict(scenario)
    full.setdefault("/etc/fstab", File(FSTAB[layout]))
    return full


def scenario_key(scenario: Scenario, layout: str) -> str:
    # The tree's digest covers how the product writes and builds it: rebuild when that changes.
    digest = tree_digest(with_fstab(scenario, layout))  # type: ignore[arg-type]
    return hashlib.sha256(f"{BUILDER_VERSION}|{layout}|{digest}".encode()).hexdigest()[:16]


def _run(*cmd: str | Path, stdin: str | None = None) -> None:
    subprocess.run([str(c) for c in cmd], input=stdin, text=True, check=True,
                   capture_output=True)


def _copy_in(src: Path, disk: Path, offset: int) -> None:
    """Write ``src`` into ``disk`` at ``offset``, skipping zero blocks (stays sparse)."""
    zero = bytes(MiB)
    with src.open("rb") as s, disk.open("r+b") as d:
        pos = 0
        while chunk := s.read(MiB):
            if chunk != zero[: len(chunk)]:
                os.pwrite(d.fileno(), chunk, offset + pos)
            pos += len(chunk)


def _partition(disk: Path, size: int, label: str, parts: list[int], ptype: str) -> None:
    with disk.open("wb") as fh:
        fh.truncate(size)
    lines = [f"label: {label}"]
    start = 2048
    for p in parts:
        lines.append(f"start={start}, size={p // 512}, type={ptype}")
        start += p // 512
    _run("sfdisk", "-q", disk, stdin="\n".join(lines) + "\n")


def _split_var(tree: Path, var_tree: Path) -> None:
    """Move ``tree/var`` to ``var_tree`` and leave an empty mountpoint with its metadata."""
    var = tree / "var"
    if not var.exists():
        var.mkdir(mode=0o755)
    st = var.stat()
    shutil.move(str(var), str(var_tree))
    var.mkdir()
    var.chmod(st.st_mode & 0o7777)
    os.chown(var, st.st_uid, st.st_gid)


def _build_ext4(tree: Path, layout: str, out: Path, work: Path) -> None:
    if layout == "simple":
        root_size = 48 * MiB
        _partition(out, 64 * MiB, "gpt", [root_size], "0FC63DAF-8483-4772-8E79-3D69D8477DE4")
        make_ext4(tree, work / "root.fs", root_size, label="auditroot", uuid=ROOT_UUID)
        _copy_in(work / "root.fs", out, 2048 * 512)
        return
    var_tree = work / "vartree"
    _split_var(tree, var_tree)
    root_size, var_size = 32 * MiB, 24 * MiB
    _partition(out, 64 * MiB, "dos", [root_size, var_size], "83")
    make_ext4(tree, work / "root.fs", root_size, label="auditroot", uuid=ROOT_UUID)
    make_ext4(var_tree, work / "var.fs", var_size, label="auditvar", uuid=VAR_UUID)
    _copy_in(work / "root.fs", out, 2048 * 512)
    _copy_in(work / "var.fs", out, 2048 * 512 + root_size)


def _tar_of(tree: Path, out: Path) -> None:
    def numeric(ti: tarfile.TarInfo) -> tarfile.TarInfo:
        ti.uname = ti.gname = ""  # tar in the appliance then keeps the numeric ids
        return ti

    with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tf:
        tf.add(tree, arcname=".", filter=numeric)


def _build_lvm_xfs(tree_lvm: Path, tree_xfs: Path, lvm_out: Path, xfs_out: Path,
                   work: Path) -> None:
    import guestfs  # type: ignore[import-not-found]

    from imageaudit.openers import kvm

    _tar_of(tree_lvm, work / "lvm.tar")
    _tar_of(tree_xfs, work / "xfs.tar")
    for path, size in ((lvm_out, 64 * MiB), (xfs_out, 320 * MiB)):
        with path.open("wb") as fh:
            fh.truncate(size)

    def make(tcg: bool) -> object:
        g = guestfs.GuestFS(python_return_dict=True)
        g.set_network(False)
        if tcg:
            g.set_backend_settings(["force_tcg"])
        g.add_drive_opts(str(lvm_out), format="raw", readonly=False)
        g.add_drive_opts(str(xfs_out), format="raw", readonly=False)
        return g

    # The product's bounded launch: where qemu accepts /dev/kvm but never runs the guest, an
    # unbounded launch here would hang the whole test session.
    bounds = kvm.Bounds.from_env()
    dog = kvm.Watchdog()
    handles: list[object] = []  # closed with the watchdog, as the Appliance does
    try:
        raw, _tcg, _why = kvm.launch(make, kvm.want_tcg(), bounds, dog)
        handles.append(raw)
        dog.pid = raw.get_pid()
        # Building needs minutes of mkfs and tar under TCG: a generous bound for each call.
        g = kvm.BoundedGuest(raw, dog, max(bounds.call, 900.0))
        g.part_disk("/dev/sda", "mbr")
        g.pvcreate("/dev/sda1")
        g.vgcreate("vgaudit", ["/dev/sda1"])
        g.lvcreate("root", "vgaudit", 48)
        g.mkfs("ext4", "/dev/vgaudit/root")
        g.mount("/dev/vgaudit/root", "/")
        g.tar_in(str(work / "lvm.tar"), "/")
        g.umount_all()
        g.part_disk("/dev/sdb", "gpt")
        g.mkfs("xfs", "/dev/sdb1", label="xfsroot")
        g.mount("/dev/sdb1", "/")
        g.tar_in(str(work / "xfs.tar"), "/")
        g.umount_all()
        g.vg_activate_all(False)
        g.shutdown()
    finally:
        kvm.close_all(handles, dog)


def _raw_disk(scenario: Scenario, layout: str) -> Path:
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}")
    out = cache_dir() / f"{scenario_key(scenario, layout)}-{layout}.raw"
    if out.exists():
        return out
    with _locked(cache_dir() / ".lock"), tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        if out.exists():
            return out
        work = Path(tmp)
        if layout in ("simple", "sepvar"):
            tree = write_tree(with_fstab(scenario, layout), work / "tree")  # type: ignore[arg-type]
            _build_ext4(tree, layout, work / "disk.raw", work)
            (work / "disk.raw").replace(out)
            return out
        # LVM and XFS come from one launch: build both, whichever was asked for.
        lvm_out = cache_dir() / f"{scenario_key(scenario, 'lvm')}-lvm.raw"
        xfs_out = cache_dir() / f"{scenario_key(scenario, 'xfs')}-xfs.raw"
        t_lvm = write_tree(with_fstab(scenario, "lvm"), work / "tlvm")  # type: ignore[arg-type]
        t_xfs = write_tree(with_fstab(scenario, "xfs"), work / "txfs")  # type: ignore[arg-type]
        _build_lvm_xfs(t_lvm, t_xfs, work / "lvm.raw", work / "xfs.raw", work)
        (work / "lvm.raw").replace(lvm_out)
        (work / "xfs.raw").replace(xfs_out)
        return out


def build_disk(scenario: Scenario, layout: str = "simple", fmt: str = "qcow2") -> Path:
    """A cached VM disk of ``scenario`` in ``layout`` and format ``fmt`` (see :data:`FORMATS`)."""
    raw = _raw_disk(scenario, layout)
    if fmt == "raw":
        return raw
    ext = {"vmdk-stream": "stream.vmdk"}.get(fmt, fmt)
    out = raw.with_suffix("." + ext)
    if not out.exists():
        convert(raw, out, *FORMATS[fmt])
    return out


def directory_of(scenario: Scenario, layout: str, root: Path) -> Path:
    """The scenario as a host directory, with the same fstab the disk carries."""
    return write_tree(with_fstab(scenario, layout), root)  # type: ignore[arg-type]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(4 * MiB):
            h.update(chunk)
    return h.hexdigest()


CANARY_HOST_PATH = "/tmp/imageaudit-host-canary.txt"
CANARY_TEXT = "HOST-CANARY-7d1f0c9e"

STANDARD: dict[str, object] = {
    "/etc/os-release": 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12"\n',
    "/etc/debian_version": "12.5\n",
    "/etc/hostname": "audit\n",
    "/etc/passwd": "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n",
    "/etc/shadow": File("root:*:19000:0:99999:7:::\n", mode=0o640, gid=42),
    "/etc/alt-shadow": Symlink("/etc/shadow"),
    "/etc/host-escape": Symlink(CANARY_HOST_PATH),
    "/etc/rel-escape": Symlink("../../../../../../.." + CANARY_HOST_PATH),
    "/bin": Symlink("usr/bin"),
    "/usr/bin/sh": File(b"\x7fELF", mode=0o755),
    "/usr/bin/passwd": File(b"\x7fELF" + bytes(200_000), mode=0o4755),
    "/usr/bin/passwd2": Hardlink("/usr/bin/passwd"),
    "/home/alice/notes": File("hi\n", uid=1000, gid=1000, mode=0o600),
    "/tmp": Dir(mode=0o1777),
    "/var/log/syslog": "log\n",
    "/var/spool/fifo": Fifo(),
    "/var/lib/dpkg/status": "Package: bash\nStatus: install ok installed\n",
}

# name -> (layout, format): every image the guestfs tests open, all in one appliance.
SHARED_IMAGES = {
    "qcow2": ("simple", "qcow2"),
    "vmdk-stream": ("simple", "vmdk-stream"),
    "vdi": ("simple", "vdi"),
    "sepvar-vmdk": ("sepvar", "vmdk"),
    "lvm-qcow2": ("lvm", "qcow2"),
    "xfs-vhdx": ("xfs", "vhdx"),
}


OVF_TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"
          xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References><File ovf:href="{href}" ovf:id="file1"/></References>
  <DiskSection><Info>disks</Info>
    <Disk ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:capacity="67108864"/>
  </DiskSection>
</Envelope>
"""


def build_ova(disk: Path, out: Path, href: str = "disk1.vmdk", manifest: bool = True,
              corrupt_digest: bool = False) -> Path:
    """An OVA (ustar) of ``disk`` with an OVF naming ``href`` and a SHA256 manifest."""
    ovf = OVF_TEMPLATE.format(href=href).encode()
    digests = {"vm.ovf": hashlib.sha256(ovf).hexdigest(), "disk1.vmdk": sha256_file(disk)}
    if corrupt_digest:
        digests["disk1.vmdk"] = "0" * 64
    mf = "".join(f"SHA256({n})= {d}\n" for n, d in digests.items()).encode()
    with tarfile.open(out, "w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in (("vm.ovf", ovf), ("vm.mf", mf)):
            if name == "vm.mf" and not manifest:
                continue
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        tf.add(disk, arcname="disk1.vmdk")
    return out
