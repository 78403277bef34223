"""Collector ``credentials``: secrets and leftovers an image should not ship.

Private keys anywhere plausible (heuristic and bounds in :mod:`imageaudit.facts.keys`),
cloud and tool credentials by path under every home and a few system paths (whether each
holds a secret, never the secret), and hygiene facts (:mod:`imageaudit.facts.hygiene`).
Reads are capped at :data:`MAX_CRED_READ`; only names of the keys that hold secrets are kept.

Follows AWS CLI "Configuration and credential file settings", OpenStack os-client-config
(clouds.yaml), docker-config-json(5), netrc(5), git-credential-store(1), kubeconfig
(client-go clientcmd v1), PostgreSQL "The Password File", mysql option files, s3cmd,
Google Cloud ADC, Globus/GSI grid-security layout, plus the specs named by ``keys`` and
``hygiene``.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass

from imageaudit.facts import hygiene
from imageaudit.facts.accounts.homes import Home, home_dirs
from imageaudit.facts.base import CollectContext, Collector
from imageaudit.facts.keys import (
    HOST_KEY_RE,
    MAX_KEY_FILE,
    MAX_SNIFF_TOTAL,
    MAX_SNIFFED,
    SNIFF_BYTES,
    find_keys,
    wants_read,
)
from imageaudit.imagefs import FileStat, FileType, ImageFSError
from imageaudit.model import Source

NAME = "credentials"
LIST_CAP = 10_000
MAX_CRED_READ = 256 * 1024
MAX_AZURE_FILES = 100
MAX_GRID_FILES = 2_000


def _kv(*names: str, sep: str = "=") -> re.Pattern[str]:
    """INI/YAML ``name <sep> value`` at a line start, the value neither blank nor ``""``."""
    alt = "|".join(re.escape(n) for n in names)
    return re.compile(
        rf"^[ \t]*(?P<name>{alt})[ \t]*{sep}[ \t]*(?![ \t]*$)(?!(?:\"\"|'')[ \t]*$)\S", re.M
    )


def _json(*names: str) -> re.Pattern[str]:
    """JSON ``"name": "non-empty string"`` anywhere (configs are often one line)."""
    alt = "|".join(re.escape(n) for n in names)
    return re.compile(rf'"(?P<name>{alt})"\s*:\s*"[^"\s]')


_PRIVATE = re.compile(r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY")
# kind, path under a home, pattern of a secret-bearing key (None: presence only)
HOME_FILES: tuple[tuple[str, str, re.Pattern[str] | None], ...] = (
    ("aws-credentials", ".aws/credentials", _kv("aws_secret_access_key", "aws_session_token")),
    ("aws-config", ".aws/config", _kv("aws_secret_access_key", "aws_session_token")),
    (
        "openstack-clouds",
        ".config/openstack/clouds.yaml",
        _kv("password", "application_credential_secret", "token", sep=":"),
    ),
    (
        "openstack-secure",
        ".config/openstack/secure.yaml",
        _kv("password", "application_credential_secret", "token", sep=":"),
    ),
    ("docker-config", ".docker/config.json", _json("auth", "identitytoken")),
    ("netrc", ".netrc", re.compile(r"(?:^|\s)(?P<name>password)\s+\S", re.M)),
    ("git-credentials", ".git-credentials", re.compile(r"://[^:/\s@]*:[^@\s]+@")),
    (
        "kube-config",
        ".kube/config",
        _kv("token", "client-key-data", "password", "id-token", "refresh-token", sep=":"),
    ),
    ("pgpass", ".pgpass", re.compile(r"^(?!#)(?:(?:\\.|[^:\\\n])*:){4}(?=\S)", re.M)),
    ("mysql-cnf", ".my.cnf", _kv("password")),
    ("s3cfg", ".s3cfg", _kv("secret_key", "access_token")),
    ("gcloud-credentials-db", ".config/gcloud/credentials.db", None),
    ("gcloud-access-tokens-db", ".config/gcloud/access_tokens.db", None),
    (
        "gcloud-adc",
        ".config/gcloud/application_default_credentials.json",
        _json("private_key", "refresh_token", "client_secret"),
    ),
    ("globus-userkey", ".globus/userkey.pem", _PRIVATE),
    ("globus-usercert", ".globus/usercert.pem", _PRIVATE),
    ("globus-usercred", ".globus/usercred.p12", None),
)
SYSTEM_FILES: tuple[tuple[str, str, re.Pattern[str] | None], ...] = (
    (
        "openstack-clouds",
        "/etc/openstack/clouds.yaml",
        _kv("password", "application_credential_secret", "token", sep=":"),
    ),
    ("grid-hostkey", "/etc/grid-security/hostkey.pem", _PRIVATE),
    ("grid-hostcert", "/etc/grid-security/hostcert.pem", _PRIVATE),
)
AZURE_SECRET = _json("accessToken", "refreshToken", "refresh_token", "secret", "client_secret")


@dataclass(frozen=True, slots=True)
class PrivateKey:
    """A private key found in a file (type and digest only, never the material)."""

    path: str
    kind: str
    algorithm: str | None
    encrypted: bool | None
    host_key: bool  # /etc/ssh/ssh_host_*_key
    fingerprint: str | None
    size: int
    mode: int
    uid: int
    gid: int
    source: Source


@dataclass(frozen=True, slots=True)
class CredentialFile:
    """A credential file of a known tool; whether it holds a secret, never the secret."""

    kind: str
    path: str
    home: str | None
    type: FileType
    link_target: str | None
    size: int
    mode: int
    uid: int
    gid: int
    has_secret: bool | None  # None: not sniffable (binary, unreadable, not a file)
    markers: tuple[str, ...]  # names of the keys that hold a value ("aws_secret_access_key")
    truncated: bool  # larger than MAX_CRED_READ: only the start was searched
    source: Source  # line of the first marker where there is one


@dataclass(frozen=True, slots=True)
class CredentialsFacts:
    """Secrets and hygiene of the image."""

    homes: tuple[Home, ...]
    private_keys: tuple[PrivateKey, ...]
    private_keys_truncated: bool  # the sniff budget ran out
    files: tuple[CredentialFile, ...]
    histories: tuple[hygiene.HistoryFile, ...]
    ssh_entries: tuple[hygiene.SshDirEntry, ...]
    cloud_state: hygiene.CloudState
    cloud_init: hygiene.CloudInit
    identity: tuple[hygiene.IdentityFile, ...]
    logs: hygiene.Logs
    temp: tuple[hygiene.TempContent, ...]
    walk_truncated: bool


def private_keys(
    ctx: CollectContext, walk: Sequence[FileStat], homes: Sequence[Home]
) -> tuple[list[PrivateKey], bool]:
    """Sniff plausible files of the walk for private keys, within the budget."""
    home_paths = tuple(h.path for h in homes if h.present)
    out: list[PrivateKey] = []
    sniffed = 0
    spent = 0
    for st in walk:
        sniff, whole = wants_read(st, home_paths)
        if not sniff:
            continue
        if sniffed >= MAX_SNIFFED or spent >= MAX_SNIFF_TOTAL:
            return out, True
        sniffed += 1
        result = ctx.read(st.path, MAX_KEY_FILE if whole else SNIFF_BYTES)
        if result is None:
            continue
        data = result.data
        if result.truncated and b"-----BEGIN " in data:
            more = ctx.read(st.path, MAX_KEY_FILE)
            data = more.data if more is not None else data
        spent += len(data)
        for key in find_keys(st.path, data):
            out.append(
                PrivateKey(
                    path=st.path,
                    kind=key.kind,
                    algorithm=key.algorithm,
                    encrypted=key.encrypted,
                    host_key=bool(HOST_KEY_RE.match(st.path)),
                    fingerprint=key.fingerprint,
                    size=st.size,
                    mode=st.mode,
                    uid=st.uid,
                    gid=st.gid,
                    source=Source(st.path, key.line),
                )
            )
    return out, False


def credential_file(
    ctx: CollectContext, kind: str, path: str, home: str | None, pattern: re.Pattern[str] | None
) -> CredentialFile | None:
    """The record for one credential path, or None when nothing is there."""
    try:
        st = ctx.fs.lstat(path)
    except ImageFSError:
        return None
    target: FileStat | None = st
    if st.is_symlink:
        try:
            target = ctx.fs.stat(path)
        except ImageFSError:
            target = None
    has_secret: bool | None = None
    markers: list[str] = []
    line: int | None = None
    truncated = False
    if target is not None and target.is_file and pattern is not None:
        result = ctx.read(path, MAX_CRED_READ)
        if result is not None:
            text = result.text()
            truncated = result.truncated
            for m in pattern.finditer(text):
                if line is None:
                    line = text.count("\n", 0, m.start()) + 1
                marker = _marker(pattern, m)
                if marker not in markers:
                    markers.append(marker)
            has_secret = bool(markers)
    size = target.size if target is not None and target.is_file else 0
    return CredentialFile(
        kind=kind,
        path=path,
        home=home,
        type=st.type,
        link_target=st.link_target,
        size=size,
        mode=st.mode,
        uid=st.uid,
        gid=st.gid,
        has_secret=has_secret,
        markers=tuple(markers),
        truncated=truncated,
        source=Source(path, line),
    )


def credential_files(
    ctx: CollectContext, walk: Sequence[FileStat], homes: Sequence[Home]
) -> list[CredentialFile]:
    """Known credential files under every home, plus system-wide ones."""
    found: list[CredentialFile | None] = []
    for home in homes:
        if not home.present:
            continue
        for kind, rel, pattern in HOME_FILES:
            found.append(
                credential_file(ctx, kind, posixpath.join(home.path, rel), home.path, pattern)
            )
        azure = posixpath.join(home.path, ".azure")
        if ctx.fs.is_dir(azure):
            for name in ctx.fs.listdir(azure)[:MAX_AZURE_FILES]:
                found.append(
                    credential_file(
                        ctx, "azure", posixpath.join(azure, name), home.path, AZURE_SECRET
                    )
                )
    for kind, path, pattern in SYSTEM_FILES:
        found.append(credential_file(ctx, kind, path, None, pattern))
    named = {path for _kind, path, _p in SYSTEM_FILES}
    grid = [
        st.path
        for st in walk
        if st.path.startswith("/etc/grid-security/")
        and st.path.endswith(".pem")
        and st.is_file
        and st.size <= MAX_KEY_FILE
        and st.path not in named
    ]
    for path in grid[:MAX_GRID_FILES]:
        record = credential_file(ctx, "grid-pem", path, None, _PRIVATE)
        if record is not None and record.has_secret:  # CA certificates are not credentials
            found.append(record)
    return [r for r in found if r is not None]


def _marker(pattern: re.Pattern[str], m: re.Match[str]) -> str:
    """A name for what matched; never the matched value (git URLs, pgpass lines hold it)."""
    if pattern is _PRIVATE:
        return m.group(0).removeprefix("-----BEGIN ")
    if "name" in pattern.groupindex:
        return m.group("name")
    return "password"


def collect(ctx: CollectContext) -> CredentialsFacts:
    """Private keys, credential files and hygiene facts of the image."""
    walk = ctx.walk()
    homes = home_dirs(ctx)
    keys, keys_cut = private_keys(ctx, walk, homes)
    keys.sort(key=lambda k: (k.path, k.source.line or 0))
    if len(keys) > LIST_CAP:
        keys, keys_cut = keys[:LIST_CAP], True
    if keys_cut:
        ctx.error(NAME, "private key search stopped at its budget; later files not sniffed")
    return CredentialsFacts(
        homes=homes,
        private_keys=tuple(keys),
        private_keys_truncated=keys_cut,
        files=tuple(credential_files(ctx, walk, homes)[:LIST_CAP]),
        histories=tuple(hygiene.histories(ctx, homes)[:LIST_CAP]),
        ssh_entries=tuple(hygiene.ssh_entries(ctx, homes)[:LIST_CAP]),
        cloud_state=hygiene.cloud_state(ctx, walk),
        cloud_init=hygiene.cloud_init(ctx),
        identity=tuple(hygiene.identity_files(ctx)),
        logs=hygiene.logs(walk, LIST_CAP),
        temp=tuple(hygiene.temp_content(ctx, walk)),
        walk_truncated=ctx.walk_cut(),
    )


COLLECTOR = Collector(
    name=NAME,
    patterns=(
        "/etc/passwd",
        "/root/.*",
        "/root/.*/*",
        "/home/*/.*",
        "/home/*/.*/*",
        "/etc/openstack/clouds.yaml",
        "/etc/grid-security/*.pem",
        "/etc/ssh/ssh_host_*_key",
        "/etc/machine-id",
        "/var/lib/dbus/machine-id",
    ),
    collect=collect,
    needs_walk=True,
)
