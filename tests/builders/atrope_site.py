"""A site's ``atrope dispatch`` run, with atrope's own code and an in-memory Glance.

Run by the Python of atrope's own virtual environment (``tests/builders/atrope_venv.py``), never
imported by the tests: ``python atrope_site.py CONFIG GLANCE_STATE``. Everything atrope does is
its own code (its command line, its image-list fetch, S/MIME verification with ``openssl
-CApath``, its cache and its Glance dispatcher's dispatch and sync), except the Glance client:
the dispatcher's client factory is replaced by one answering from ``GLANCE_STATE``, a JSON file
that keeps the images, their members and every call across runs, as a Glance would between two
cron runs. Each call is also printed.
"""

from __future__ import annotations

import hashlib
import json
import sys
import uuid
from pathlib import Path
from typing import Any


class GlanceImage(dict[str, Any]):
    """An image as glanceclient v2 returns it: a dict whose keys are attributes too."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError as exc:
            raise AttributeError(key) from exc


class FakeGlance:
    """The calls atrope's Glance dispatcher makes, on a JSON file (``images``, ``members``,
    ``calls``), as the project ``project`` (None: the dispatcher's own credentials)."""

    def __init__(self, path: Path, project: str | None) -> None:
        self.path, self.project = path, project
        self.images, self.image_members = _Images(self), _Members(self)

    def load(self) -> dict[str, Any]:
        if not self.path.exists():
            return {"images": {}, "members": {}, "calls": []}
        state: dict[str, Any] = json.loads(self.path.read_text())
        return state

    def save(self, state: dict[str, Any], *call: Any) -> None:
        state["calls"].append([*call, self.project])
        print("glance:", json.dumps([*call, self.project]), flush=True)
        self.path.write_text(json.dumps(state, indent=1, sort_keys=True))


class _Images:
    def __init__(self, glance: FakeGlance) -> None:
        self.glance = glance

    def list(self, filters: dict[str, Any] | None = None) -> list[GlanceImage]:
        state = self.glance.load()
        out = []
        for image in state["images"].values():
            wanted = dict(filters or {})
            tags = wanted.pop("tag", [])
            if set(tags) <= set(image["tags"]) and all(
                    image.get(k) == v for k, v in wanted.items()):
                out.append(GlanceImage(image))
        self.glance.save(state, "images.list", filters)
        return out

    def create(self, **metadata: Any) -> GlanceImage:
        state = self.glance.load()
        image = {**metadata, "id": str(uuid.uuid4()), "status": "queued"}
        state["images"][image["id"]] = image
        self.glance.save(state, "images.create", image["id"], metadata)
        return GlanceImage(image)

    def upload(self, image_id: str, data: Any) -> None:
        content = data.read()
        state = self.glance.load()
        image = state["images"][image_id]
        image.update(status="active", size=len(content),
                     os_hash_value=hashlib.sha512(content).hexdigest(), os_hash_algo="sha512")
        self.glance.save(state, "images.upload", image_id, len(content))

    def update(self, image_id: str, **changes: Any) -> None:
        state = self.glance.load()
        state["images"][image_id].update(changes)
        self.glance.save(state, "images.update", image_id, changes)

    def delete(self, image_id: str) -> None:
        state = self.glance.load()
        del state["images"][image_id]
        state["members"].pop(image_id, None)
        self.glance.save(state, "images.delete", image_id)


class _Members:
    def __init__(self, glance: FakeGlance) -> None:
        self.glance = glance

    def create(self, image_id: str, member: str) -> None:
        from glanceclient import exc

        state = self.glance.load()
        if state["images"][image_id].get("visibility") != "shared":
            raise exc.HTTPForbidden("only shared images have members")
        members = state["members"].setdefault(image_id, {})
        if member in members:
            raise exc.HTTPConflict(f"{member} is already a member of {image_id}")
        members[member] = "pending"
        self.glance.save(state, "image_members.create", image_id, member)

    def update(self, image_id: str, member: str, status: str) -> None:
        from glanceclient import exc

        if self.glance.project != member:  # only the member itself accepts a share
            raise exc.HTTPForbidden(f"{self.glance.project} may not answer for {member}")
        state = self.glance.load()
        state["members"][image_id][member] = status
        self.glance.save(state, "image_members.update", image_id, member, status)


def main(config: str, state: str) -> None:
    import atrope.cmd.cli
    from atrope.dispatcher import glance

    def client(self: object, project_id: str | None = None) -> FakeGlance:
        return FakeGlance(Path(state), project_id)

    glance.Dispatcher._get_glance_client = client  # type: ignore[method-assign]
    glance.Dispatcher._get_ks_client = lambda self: None  # type: ignore[method-assign]
    sys.argv = ["atrope", "--config-file", config, "dispatch"]
    atrope.cmd.cli.main()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
