r"""Fetch ``docker://NAME[:TAG][@DIGEST]`` from a Docker daemon as a docker-archive.

The reference is checked against the grammar of distribution/reference before the daemon is
contacted: the SDK puts the name into the API's URL path, so ``../../containers/x/json`` or
``a?b`` would otherwise reach another endpoint. The daemon is asked for ``docker save`` of one
image (the SDK's ``Image.save``); the stream is written to an already unlinked temporary file
under the image-size cap and then read like any docker-archive. The daemon is found the usual
way (``DOCKER_HOST`` and friends).

Grammar (github.com/distribution/reference, reference.go)::

    reference        := name [ ":" tag ] [ "@" digest ]
    name             := [domain "/"] path-component ["/" path-component]*   (at most 255)
    domain           := host [":" port]       host: domain-component ["." ...] | "[" IPv6 "]"
    domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
    path-component   := /[a-z0-9]+/ [ separator /[a-z0-9]+/ ]*   separator: /[_.]|__|[-]+/
    tag              := /[\w][\w.-]{0,127}/
    digest           := algorithm ":" /[0-9a-fA-F]{32,}/
    algorithm        := /[A-Za-z][A-Za-z0-9]*/ [ /[+._-]/ /[A-Za-z][A-Za-z0-9]*/ ]*
"""

from __future__ import annotations

import re
import tempfile
from typing import IO

from imageaudit.openers.layers import ContainerImageError, ContainerLimits

PREFIX = "docker://"
NAME_MAX = 255
_ALNUM = r"[a-z0-9]+"
_PATH_COMPONENT = re.compile(rf"{_ALNUM}(?:(?:[_.]|__|-+){_ALNUM})*", re.ASCII)
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?", re.ASCII
)
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_ALGORITHM = r"[A-Za-z][A-Za-z0-9]*(?:[+._-][A-Za-z][A-Za-z0-9]*)*"
_DIGEST = re.compile(rf"{_ALGORITHM}:[0-9a-fA-F]{{32,}}", re.ASCII)
# Every character the grammar can produce; anything else is named in the error.
_ALLOWED = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-:/@+[]")


def shown(text: str) -> str:
    """``text`` with control characters escaped, so an error naming it stays one line."""
    return text.encode("unicode_escape", "backslashreplace").decode("ascii")


def reference_error(name: str) -> str | None:
    """Why ``name`` (without ``docker://``) is not an image reference, or ``None`` if it is."""
    if not name:
        return "the reference is empty"
    bad = next((c for c in name if c not in _ALLOWED), None)
    if bad is not None:
        return f"character {shown(repr(bad))} is not allowed in an image reference"
    rest, at, digest = name.partition("@")
    if at and not _DIGEST.fullmatch(digest):
        return f"digest {digest!r} is not ALGORITHM:HEX with at least 32 hex digits"
    head, slash, last = rest.rpartition("/")
    repo_last, colon, tag = last.partition(":")
    repo = f"{head}{slash}{repo_last}"
    if colon and not _TAG.fullmatch(tag):
        return f"tag {tag!r} is not 1 to 128 of [A-Za-z0-9_.-], not starting with '.' or '-'"
    if not repo:
        return "the repository name is empty"
    if len(repo) > NAME_MAX:
        return f"the repository name is longer than {NAME_MAX} characters"
    parts = repo.split("/")
    if len(parts) > 1 and _DOMAIN.fullmatch(parts[0]):
        parts = parts[1:]
    elif ":" in parts[0] or "[" in parts[0]:
        return f"registry {parts[0]!r} is not HOST[:PORT]"
    for part in parts:
        if not _PATH_COMPONENT.fullmatch(part):
            return (
                f"path component {part!r} is not lowercase letters and digits "
                "separated by '.', '_', '__' or dashes"
            )
    return None


def image_name(ref: str) -> str:
    """``docker://debian:12`` → ``debian:12``; anything but an image reference is refused."""
    name = ref[len(PREFIX) :] if ref.startswith(PREFIX) else ref
    why = reference_error(name)
    if why is not None:
        raise ContainerImageError(shown(ref), f"not a valid image reference: {why}")
    return name


def save_image(ref: str, limits: ContainerLimits, spool_dir: str | None = None) -> IO[bytes]:
    """The ``docker save`` archive of ``ref`` in a private temporary file, rewound."""
    import docker  # imported late: only this way of opening needs the SDK and a daemon
    import docker.errors

    name = image_name(ref)
    try:
        client = docker.from_env()
    except docker.errors.DockerException as exc:
        raise ContainerImageError(ref, f"no Docker daemon reachable ({exc})") from exc
    # Handed to the caller, who closes it with the tree built from it.
    out = tempfile.TemporaryFile(dir=spool_dir, prefix="imageaudit-save-")  # noqa: SIM115
    try:
        image = client.images.get(name)
        total = 0
        cap = limits.max_image_compressed
        for chunk in image.save(chunk_size=1 << 20, named=True):
            total += len(chunk)
            if total > cap:
                raise ContainerImageError(ref, f"docker save output over the cap of {cap} bytes")
            out.write(chunk)
        out.flush()
        out.seek(0)
    except docker.errors.ImageNotFound as exc:
        out.close()
        raise ContainerImageError(ref, f"image {name} not found in the daemon") from exc
    except docker.errors.DockerException as exc:
        out.close()
        raise ContainerImageError(ref, f"docker save failed ({exc})") from exc
    except BaseException:
        out.close()
        raise
    finally:
        client.close()
    return out
