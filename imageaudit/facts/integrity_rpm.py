"""The file digests rpm records, for the ``integrity`` collector (the offline ``rpm -V``).

The same database the package inventory reads (found and split into header blobs by
:mod:`imageaudit.facts.packages.rpmdb`) is read again for the file tags the inventory does
not keep: ``FILEDIGESTS`` in the algorithm of ``FILEDIGESTALGO`` (MD5 when absent),
``FILEMODES`` (only regular files are compared), ``FILEFLAGS`` (``%config`` and ``%ghost``
files are not compared) and ``FILEVERIFYFLAGS`` (a ``%verify`` without the digest is not
compared), as ``rpm -V`` does.

Specs: rpm ``include/rpm/rpmtag.h`` (tags), ``rpmfiles.h`` (RPMFILE_CONFIG, RPMFILE_GHOST,
RPMVERIFY_FILEDIGEST), ``rpmpgp.h`` (PGPHASHALGO numbers).
"""

from __future__ import annotations

import sqlite3
import stat
import struct

from imageaudit.facts.integrity_db import Gather
from imageaudit.facts.packages import rpm_header as rh
from imageaudit.facts.packages import rpmdb
from imageaudit.facts.packages.bdb import BDBError
from imageaudit.facts.packages.ndb import NDBError
from imageaudit.imagefs import ImageFSError
from imageaudit.model import Source

TAG_FILEMODES = 1030
TAG_FILEDIGESTS = 1035
TAG_FILEFLAGS = 1037
TAG_FILEVERIFYFLAGS = 1045
TAG_FILEDIGESTALGO = 5011
WANTED = rh.WANTED | {TAG_FILEMODES, TAG_FILEDIGESTS, TAG_FILEFLAGS, TAG_FILEVERIFYFLAGS,
                      TAG_FILEDIGESTALGO}

RPMFILE_CONFIG = 1 << 0
RPMFILE_GHOST = 1 << 6
RPMVERIFY_FILEDIGEST = 1 << 0
# PGPHASHALGO_* -> hashlib name
ALGORITHMS = {1: "md5", 2: "sha1", 8: "sha256", 9: "sha384", 10: "sha512", 11: "sha224"}


def header_digests(g: Gather, blob: bytes, source: Source) -> None:
    """Hand the recorded digests of one package header to ``g``; raises ``HeaderError``."""
    header = rh.parse_header(blob, WANTED)
    name = header.string(rh.TAG_NAME) or "?"
    arch = header.string(rh.TAG_ARCH)
    package = f"{name}.{arch}" if arch else name
    paths = header.file_paths()
    if not paths:
        return
    digests = header.strings(TAG_FILEDIGESTS)
    modes = header.ints(TAG_FILEMODES)
    flags = header.ints(TAG_FILEFLAGS)
    verify = header.ints(TAG_FILEVERIFYFLAGS)
    algo_ids = header.ints(TAG_FILEDIGESTALGO)
    algorithm = ALGORITHMS.get(algo_ids[0] if algo_ids else 1)
    g.packages += 1
    if algorithm is None or len(digests) != len(paths) or len(modes) != len(paths):
        g.not_verified(source.path, f"package {package}: file digests not understood",
                       "database", package)
        return
    for i, path in enumerate(paths):
        flag = flags[i] if i < len(flags) else 0
        if flag & RPMFILE_GHOST:
            g.skip("rpm %ghost file")
        elif not stat.S_ISREG(modes[i]) or not digests[i]:
            continue  # directories, symlinks, devices: rpm records no digest
        elif flag & RPMFILE_CONFIG:
            g.skip("configuration file")
        elif i < len(verify) and not verify[i] & RPMVERIFY_FILEDIGEST:
            g.skip("rpm %verify without the digest")
        else:
            g.expect(path, package, "rpm", algorithm, digests[i].lower(), source)


def read_rpm_digests(g: Gather) -> None:
    """The digests of every package in the rpm database the inventory reads."""
    found = rpmdb._found(g.ctx)  # the same choice of database as the inventory
    if not found:
        return
    path, fmt = found[0]
    try:
        result = g.ctx.fs.read(path, rpmdb.MAX_DB_BYTES)
    except (ImageFSError, OSError) as exc:
        g.not_verified(path, f"cannot be read: {exc}", "database", None)
        return
    if result.truncated:
        g.not_verified(path, f"larger than {rpmdb.MAX_DB_BYTES} bytes", "database", None)
        return
    g.databases.append(path)
    blobs: list[rpmdb.Blob] = []
    try:
        rpmdb._READERS[fmt](result.data, blobs)
    except (sqlite3.Error, BDBError, NDBError, struct.error, OSError) as exc:
        g.not_verified(path, f"{fmt} database: {exc}", "database", None)
    source = Source(path)
    for ident, blob in blobs:
        if isinstance(blob, Exception):
            g.not_verified(path, f"record {ident}: {blob}", "database", None)
            continue
        try:
            header_digests(g, blob, source)
        except (rh.HeaderError, struct.error) as exc:
            g.not_verified(path, f"record {ident}: {exc}", "database", None)
