"""OpenStack: Glance images and Nova servers through openstacksdk, with the user's clouds.yaml.

Finding copies: every image the credentials can see (hidden ones too) whose ``os_hash_value``
is the catalogue file's SHA-512 (Glance computes it on upload), whose id or name was given, or
which carries the catalogue's identifier in a property sites' image-list sync sets
(:data:`IDENTIFIER_PROPERTIES`). Evidence snapshots made by ``contain`` are never counted as
copies.

Facts about these APIs the steps rely on (measured on Zed): Glance's deactivate answers 403 to
a user who may not deactivate and openstacksdk's ``deactivate_image()`` returns as if it had
worked, so every step reads the image back; right after a snapshot request the server has
``task_state=image_snapshot_pending`` and a pause gets 409, so the snapshot step waits until
``task_state`` clears; a lock with a reason needs compute microversion 2.73 (openstacksdk
negotiates it); ``all_tenants`` is for admins only.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from imageaudit.cloud.model import (
    INCIDENT_KEY,
    REASON_KEY,
    CloudObject,
    ContainOptions,
    Found,
    Held,
    ImageQuery,
    Record,
    State,
    Step,
    Target,
)
from imageaudit.cloud.provider import release_pairs
from imageaudit.errors import UsageError

API_TIMEOUT = 60
POLL = 1.0
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
EVIDENCE_KEY = "imageaudit_evidence"
# Image properties naming the catalogue's image (its dc:identifier in the VO image list): atrope
# sets appdb_id on every image it uploads (beside tag "atrope" and the sha512 property); a site
# uploading by hand may set it too.
IDENTIFIER_PROPERTIES = ("appdb_id",)
# A server in one of these states runs no guest code: isolating it again is not needed.
NOT_RUNNING = frozenset({"PAUSED", "SUSPENDED", "SHUTOFF", "SHELVED", "SHELVED_OFFLOADED"})
ISOLATE_WORDS = {
    "pause": "pause it (memory kept in RAM)",
    "suspend": "suspend it (memory written to disk)",
    "stop": "stop it (memory lost)",
}


def _incident_tag(incident: str) -> str:
    return f"incident:{incident}"


def snapshot_name(incident: str, server_id: str) -> str:
    """The evidence snapshot's name. Glance reads ``word:`` at the start of a name filter as an
    operator (``in:``, ``eq:``), so the incident's ':' are written '-'; the snapshot is told
    from another incident's by its incident property."""
    return f"imageaudit-{incident.replace(':', '-')}-{server_id}"[:255]


def _image_of(server: Any) -> str | None:
    image = server.image
    value = image.get("id") if isinstance(image, dict) else getattr(image, "id", None)
    return value if isinstance(value, str) else None


def _lock_reason(incident: str, reason: str) -> str:
    return f"imageaudit incident {incident}: {reason}"[:255]


class OpenStackProvider:
    def __init__(self, target: Target) -> None:
        import warnings

        # openstacksdk warns about its own future API changes: noise to an operator
        warnings.filterwarnings("ignore", module=r"openstack(\.|$)")
        import openstack
        from openstack.config.exceptions import OpenStackConfigException

        self.target = target
        try:
            self.conn: Any = openstack.connect(cloud=target.name, api_timeout=API_TIMEOUT)
        except OpenStackConfigException as exc:
            raise UsageError(f"--cloud {target.name}: {exc}") from None
        self._all_projects: bool | None = None
        self.notes: list[str] = []

    # -- finding ----------------------------------------------------------------------------

    def _images(self) -> list[Any]:
        seen: dict[str, Any] = {}
        # Hidden images are left out of default listings but still boot: ask for both.
        for hidden in (False, True):
            for img in self.conn.image.images(is_hidden=hidden):
                seen.setdefault(img.id, img)
        return list(seen.values())

    @staticmethod
    def _is_evidence(img: Any) -> bool:
        return bool((img.properties or {}).get(EVIDENCE_KEY))

    def _servers(self, **query: Any) -> list[Any]:
        """Servers matching ``query`` in every project when the credentials may see them all
        (admin), else in the credentials' own project, with a note saying so."""
        from openstack import exceptions

        if self._all_projects is not False:
            try:
                found = list(self.conn.compute.servers(details=True, all_projects=True, **query))
                self._all_projects = True
                return found
            except exceptions.ForbiddenException:
                self._all_projects = False
                self.notes.append(
                    "these credentials may not list other projects' servers (all_tenants is for "
                    "admins): only the instances of their own project are seen")
        return list(self.conn.compute.servers(details=True, **query))

    def find(self, query: ImageQuery) -> Found:
        found = Found()
        ids = set(query.cloud_ids)
        idents = set(query.identifiers)
        for img in self._images():
            if self._is_evidence(img):
                continue
            props = img.properties or {}
            same_file = bool(query.sha512 and img.hash_algo == "sha512"
                             and img.hash_value == query.sha512)
            named = img.id in ids or (img.name and img.name in ids)
            tagged = any(props.get(p) in idents for p in IDENTIFIER_PROPERTIES if props.get(p))
            if not (same_file or named or tagged):
                continue
            obj = CloudObject("image", img.id, img.name or "", img.owner or "")
            found.images.append(obj)
            if img.hash_algo == "sha512" and img.hash_value:
                found.sha512[img.id] = img.hash_value
            found.instances[img.id] = self._servers_of(img.id)
        # Ids of copies no longer in Glance (deleted since the agent last saw them, e.g. by
        # atrope when the image left the list): their instances still run.
        for gone in sorted(ids - {o.id for o in found.images}):
            if not UUID_RE.match(gone):
                continue
            servers = self._servers_of(gone)
            if servers:
                found.instances[gone] = servers
                found.notes.append(f"image {gone} is no longer in Glance: the {len(servers)} "
                                   "server(s) started from it are contained all the same")
        found.notes.extend(self.notes)
        return found

    def _servers_of(self, image_id: str) -> list[CloudObject]:
        return [CloudObject("server", s.id, s.name or "", s.project_id or "")
                for s in self._servers(image=image_id)]

    def holdings(self, remembered: Mapping[str, Sequence[str]] | None = None
                 ) -> dict[str, Held]:
        by_image = {i: sha for sha, known in (remembered or {}).items() for i in known}
        ids: dict[str, list[str]] = {}
        for img in self._images():
            if self._is_evidence(img) or img.hash_algo != "sha512" or not img.hash_value:
                continue
            by_image[img.id] = img.hash_value
            ids.setdefault(img.hash_value, []).append(img.id)
        instances: Counter[str] = Counter()
        for s in self._servers():
            image_id = _image_of(s)
            if image_id in by_image:
                instances[by_image[image_id]] += 1
        return {sha: Held(len(ids.get(sha, ())), instances[sha], tuple(sorted(ids.get(sha, ()))))
                for sha in {*ids, *instances}}

    # -- reading state ----------------------------------------------------------------------

    def _image(self, image_id: str) -> Any:
        return self.conn.image.get_image(image_id)

    def _server(self, server_id: str) -> Any:
        return self.conn.compute.get_server(server_id)

    def _wait(self, what: str, check: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not done after {timeout:.0f} s")
            time.sleep(POLL)

    # -- containment ------------------------------------------------------------------------

    def contain_steps(self, found: Found, options: ContainOptions) -> list[Step]:
        steps: list[Step] = []
        for obj in found.images:
            steps.extend(self._image_steps(obj, options))
        for servers in found.instances.values():
            for server in servers:
                steps.extend(self._server_steps(server, options))
        return steps

    def _image_steps(self, obj: CloudObject, o: ContainOptions) -> list[Step]:
        img = self.conn.image
        tag = _incident_tag(o.incident)

        def marks() -> State:
            i = self._image(obj.id)
            return {"tagged": tag in (i.tags or []),
                    INCIDENT_KEY: (i.properties or {}).get(INCIDENT_KEY)}

        def mark() -> None:
            img.add_tag(obj.id, tag)
            img.update_image(obj.id, **{INCIDENT_KEY: o.incident, REASON_KEY: o.reason[:255]})

        def visibility() -> State:
            return {"visibility": self._image(obj.id).visibility}

        def protection() -> State:
            return {"protected": bool(self._image(obj.id).is_protected)}

        def status() -> State:
            return {"status": self._image(obj.id).status}

        return [
            Step(obj, "tag", f"tag it {tag} and set {INCIDENT_KEY}", marks,
                 lambda s: bool(s["tagged"]) and s[INCIDENT_KEY] == o.incident, mark),
            Step(obj, "make-private", "make it private (no other project can boot it)",
                 visibility, lambda s: s["visibility"] == "private",
                 lambda: img.update_image(obj.id, visibility="private"),
                 unmet="Glance still shows the old visibility"),
            Step(obj, "protect", "protect it (it cannot be deleted)", protection,
                 lambda s: bool(s["protected"]),
                 lambda: img.update_image(obj.id, is_protected=True)),
            Step(obj, "deactivate", "deactivate it (no boot, no download)", status,
                 lambda s: s["status"] == "deactivated",
                 lambda: img.deactivate_image(obj.id),
                 unmet="Glance still shows it not deactivated: deactivation needs an admin "
                       "or a member of the image's own project, and Glance's refusal (403) "
                       "reaches the client as success"),
        ]

    def _snapshot_state(self, server_id: str, incident: str) -> State:
        name = snapshot_name(incident, server_id)
        snaps = [i for i in self.conn.image.images(name=name)
                 if (i.properties or {}).get(INCIDENT_KEY) == incident]
        server = self._server(server_id)
        return {"snapshot": snaps[0].id if snaps else None,
                "snapshot_status": snaps[0].status if snaps else None,
                "task_state": server.task_state}

    def _server_steps(self, obj: CloudObject, o: ContainOptions) -> list[Step]:
        compute = self.conn.compute

        def snapshot_read() -> State:
            return self._snapshot_state(obj.id, o.incident)

        def snapshot() -> None:
            if snapshot_read()["snapshot"] is None:
                compute.create_server_image(
                    obj.id, snapshot_name(o.incident, obj.id),
                    metadata={INCIDENT_KEY: o.incident, EVIDENCE_KEY: "snapshot",
                              REASON_KEY: o.reason[:255]})
            self._wait(f"snapshot of server {obj.id}",
                       lambda: self._server(obj.id).task_state is None, o.wait_timeout)

        def status() -> State:
            s = self._server(obj.id)
            return {"status": s.status, "task_state": s.task_state}

        isolate = {"pause": compute.pause_server, "suspend": compute.suspend_server,
                   "stop": compute.stop_server}[o.instance_action]

        def isolate_it() -> None:
            isolate(obj.id)
            self._wait(f"{o.instance_action} of server {obj.id}",
                       lambda: self._server(obj.id).status in NOT_RUNNING, o.wait_timeout)

        def lock_read() -> State:
            s = self._server(obj.id)
            return {"locked": bool(s.is_locked), "locked_reason": s.locked_reason}

        return [
            Step(obj, "snapshot", "snapshot it and wait until Nova has taken it",
                 snapshot_read, lambda s: s["snapshot"] is not None and s["task_state"] is None,
                 snapshot, gate=True,
                 unmet="no snapshot for this incident appears, or the server is still busy"),
            Step(obj, o.instance_action, ISOLATE_WORDS[o.instance_action], status,
                 lambda s: s["status"] in NOT_RUNNING, isolate_it),
            Step(obj, "lock", "lock it with the incident as reason", lock_read,
                 lambda s: bool(s["locked"]),
                 lambda: compute.lock_server(obj.id, locked_reason=_lock_reason(o.incident,
                                                                                o.reason))),
        ]

    # -- release ----------------------------------------------------------------------------

    def release_steps(self, records: Sequence[Record]) -> list[Step]:
        incident = records[0].incident if records else ""
        return [step for r in release_pairs(records, incident)
                for step in self._undo(r)]

    def _undo(self, r: Record) -> Iterable[Step]:
        obj, img, compute = r.obj, self.conn.image, self.conn.compute
        if r.action == "deactivate":
            yield Step(obj, "reactivate", "reactivate it",
                       lambda: {"status": self._image(obj.id).status},
                       lambda s: s["status"] == "active",
                       lambda: img.reactivate_image(obj.id))
        elif r.action == "make-private":
            was = r.before.get("visibility", "private")
            yield Step(obj, "restore-visibility", f"make it {was} again",
                       lambda: {"visibility": self._image(obj.id).visibility},
                       lambda s: s["visibility"] == was,
                       lambda: img.update_image(obj.id, visibility=was))
        elif r.action == "protect":
            protected = bool(r.before.get("protected", False))
            yield Step(obj, "restore-protection", f"set protected={protected} again",
                       lambda: {"protected": bool(self._image(obj.id).is_protected)},
                       lambda s: s["protected"] == protected,
                       lambda: img.update_image(obj.id, is_protected=protected))
        elif r.action in ("pause", "suspend", "stop"):
            undo, call = {"pause": ("unpause", compute.unpause_server),
                          "suspend": ("resume", compute.resume_server),
                          "stop": ("start", compute.start_server)}[r.action]

            def run_again(call: Callable[[str], object] = call) -> None:
                call(obj.id)
                self._wait(f"{undo} of server {obj.id}",
                           lambda: self._server(obj.id).status == "ACTIVE", API_TIMEOUT * 10)

            yield Step(obj, undo, f"{undo} it", lambda: {"status": self._server(obj.id).status},
                       lambda s: s["status"] == "ACTIVE", run_again)
        elif r.action == "lock":
            yield Step(obj, "unlock", "unlock it",
                       lambda: {"locked": bool(self._server(obj.id).is_locked)},
                       lambda s: not s["locked"], lambda: compute.unlock_server(obj.id))
