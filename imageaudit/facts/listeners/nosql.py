"""Exposure settings of redis, MongoDB, memcached and Elasticsearch (listeners helpers).

Follows redis.conf as documented by redis.io ("include", last directive wins; the
``aclfile``'s ``user`` lines, read as ``acluser`` settings, see "ACL rules in an external
file" of the Redis ACL documentation), MongoDB's
"Configuration File Options" (YAML) and the legacy ini format of ``/etc/mongodb.conf``,
memcached(1) and the memcached packaging of Debian (``/etc/memcached.conf``) and RHEL
(``/etc/sysconfig/memcached``), and Elasticsearch's "Networking" and "Security settings".
"""

from __future__ import annotations

import posixpath

import yaml

from imageaudit.facts.base import CollectContext
from imageaudit.facts.conftext import (
    IncludeGuard,
    glob_files,
    join_path,
    numbered_lines,
    parse_options,
    parse_shell_vars,
    read_config,
    readable_or_broken,
    split_words,
    universal_lines,
)
from imageaudit.facts.listeners.model import DaemonBuilder, config_lines
from imageaudit.model import Source

YAML_LIMIT = 256 * 1024
MAX_YAML_NODES = 10_000
REDIS_MAIN = ("/etc/redis/redis.conf", "/etc/redis.conf")
MONGO_FILES = ("/etc/mongod.conf", "/etc/mongodb.conf")
MEMCACHED_OPTS = {
    "-l": "-l", "--listen": "-l", "-p": "-p", "--port": "-p", "-U": "-U", "--udp-port": "-U",
}
ES_FILE = "/etc/elasticsearch/elasticsearch.yml"


def _redis_file(guard: IncludeGuard, out: DaemonBuilder, path: str, depth: int,
                src: Source | None) -> None:
    for source, raw, line in config_lines(guard, out, path, depth, src):
        key, _sep, rest = line.partition(" ")
        key = key.lower()
        rest = rest.strip()
        if split_words(rest) is None:
            out.bad("unbalanced quotes", raw, source)
            continue
        if key == "include":
            for inc in glob_files(guard.ctx, join_path(posixpath.dirname(path), rest)):
                _redis_file(guard, out, inc, depth + 1, source)
            continue
        out.add(key, rest, source)
        if key == "aclfile":
            _redis_aclfile(guard.ctx, out, rest.strip("'\""), source)


def _redis_aclfile(ctx: CollectContext, out: DaemonBuilder, path: str, src: Source) -> None:
    """``user`` lines of an ACL file as ``acluser`` settings; ``aclfile-unread`` when the file
    is relative (resolved against the server's working directory) or not in the image."""
    if not path.startswith("/"):
        out.add("aclfile-unread", f"{path} is relative to the server's working directory", src)
        return
    text = ctx.read_text(path)
    if text is None:
        out.add("aclfile-unread", f"{path} is not in the image", src)
        return
    out.files.append(path)
    for number, raw in numbered_lines(text):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _sep, rest = line.partition(" ")
        if key.lower() != "user" or not rest.strip():
            out.bad("not a user line", raw, Source(path, number))
            continue
        out.add("acluser", rest.strip(), Source(path, number))


def collect_redis(ctx: CollectContext) -> list[DaemonBuilder]:
    """One builder per redis configuration (``redis.conf`` and ``redis-<name>.conf``)."""
    mains = [p for p in REDIS_MAIN if readable_or_broken(ctx, p)]
    mains += [p for p in glob_files(ctx, "/etc/redis/redis-*.conf") if p not in mains]
    out = []
    for main in mains:
        builder = DaemonBuilder("redis", main)
        guard = IncludeGuard(ctx, "listeners")
        _redis_file(guard, builder, main, 0, None)
        builder.malformed.extend(guard.malformed)
        out.append(builder)
    return out or [DaemonBuilder("redis")]


def yaml_settings(text: str, path: str, out: DaemonBuilder) -> bool:
    """Flatten a YAML mapping into dotted keys with line numbers; False when not a mapping.

    Nested mappings and flat dotted keys (``network.host: x``) give the same key. A list of
    scalars becomes one comma-joined value. Anchors are visited once (no alias blow-up).
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        out.bad(f"not valid YAML: {type(exc).__name__}", "", Source(path))
        return False
    if not isinstance(root, yaml.MappingNode):
        return False
    stack: list[tuple[str, yaml.Node]] = [("", root)]
    seen: set[int] = set()
    count = 0
    found: list[tuple[str, str, int]] = []
    while stack:
        prefix, node = stack.pop()
        count += 1
        if id(node) in seen or count > MAX_YAML_NODES:
            continue
        seen.add(id(node))
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
                stack.append((f"{prefix}.{key}" if prefix else key, value_node))
        elif isinstance(node, yaml.SequenceNode):
            items = [str(n.value) for n in node.value if isinstance(n, yaml.ScalarNode)]
            found.append((prefix, ",".join(items), line))
        elif isinstance(node, yaml.ScalarNode):
            found.append((prefix, str(node.value), line))
    if count > MAX_YAML_NODES:
        out.bad(f"more than {MAX_YAML_NODES} YAML nodes", "", Source(path))
    for key, value, line in sorted(found, key=lambda f: (f[2], f[0])):
        out.add(key, value, Source(path, line))
    return True


def _ini_settings(text: str, path: str, out: DaemonBuilder) -> None:
    for number, raw in numbered_lines(text):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        key, sep, value = line.partition("=")
        if not sep:
            out.bad("not key = value", raw, Source(path, number))
            continue
        out.add(key.strip(), value.strip(), Source(path, number))


def collect_mongodb(ctx: CollectContext) -> list[DaemonBuilder]:
    """``net.bindIp``, ``security.authorization`` (YAML) or ``bind_ip``/``auth`` (legacy)."""
    out = DaemonBuilder("mongodb")
    for path in MONGO_FILES:
        text = ctx.read_text(path, YAML_LIMIT)
        if text is None:
            continue
        out.files.append(path)
        legacy = "\n".join(
            ln for ln in universal_lines(text) if ln.strip() and not ln.lstrip().startswith("#")
        )
        # 2.4-style ini ("bind_ip = x") has no mapping; try YAML only when it can be one
        legacy_ini = ":" not in legacy and "=" in legacy
        if legacy_ini or not yaml_settings(text, path, out):
            _ini_settings(text, path, out)
    return [out]


def collect_memcached(ctx: CollectContext) -> list[DaemonBuilder]:
    """Options of ``/etc/memcached.conf`` and variables of ``/etc/sysconfig/memcached``."""
    out = DaemonBuilder("memcached")
    path = "/etc/memcached.conf"
    text = read_config(ctx, path)
    if text is not None:
        out.files.append(path)
        for number, raw in numbered_lines(text):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            words = split_words(line)
            if words is None:
                out.bad("unbalanced quotes", raw, Source(path, number))
                continue
            out.settings.extend(parse_options(words, MEMCACHED_OPTS, Source(path, number)))
    path = "/etc/sysconfig/memcached"
    text = read_config(ctx, path)
    if text is not None:
        out.files.append(path)
        settings, malformed = parse_shell_vars(text, path)
        out.malformed.extend(malformed)
        for setting in settings:
            out.settings.append(setting)
            if setting.key == "OPTIONS":
                words = split_words(setting.value) or []
                out.settings.extend(parse_options(words, MEMCACHED_OPTS, setting.source))
    return [out]


def collect_elasticsearch(ctx: CollectContext) -> list[DaemonBuilder]:
    """Every key of ``elasticsearch.yml``, flattened (``network.host``, ``xpack...``)."""
    out = DaemonBuilder("elasticsearch")
    text = ctx.read_text(ES_FILE, YAML_LIMIT)
    if text is not None:
        out.files.append(ES_FILE)
        if not text.strip():
            return [out]
        if not yaml_settings(text, ES_FILE, out):
            out.bad("not a YAML mapping", text[:80], Source(ES_FILE))
    return [out]
