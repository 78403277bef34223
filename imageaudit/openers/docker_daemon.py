"""Fetch ``docker://NAME[:TAG]`` from a Docker daemon as a docker-archive, into a private file.

The daemon is asked for ``docker save`` of one image (the SDK's ``Image.save``); the stream
is written to an already unlinked temporary file under the image-size cap and then read like
any docker-archive. The daemon is found the usual way (``DOCKER_HOST`` and friends).
"""

from __future__ import annotations

import tempfile
from typing import IO

from imageaudit.openers.layers import ContainerImageError, ContainerLimits

PREFIX = "docker://"


def image_name(ref: str) -> str:
    """``docker://debian:12`` → ``debian:12``; an empty name is refused."""
    name = ref[len(PREFIX) :] if ref.startswith(PREFIX) else ref
    if not name or any(c.isspace() for c in name):
        raise ContainerImageError(ref, "not a valid docker image reference")
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
