"""OCI references, pulling VM disks and attaching reports, against a real registry (2.8.2).

Each test pushes its own disk (a qcow2 of a size no other test uses), so a test that damages a
blob in the registry's storage damages nobody else's.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import oras.provider
import pytest

from imageaudit.batch import registry as reg
from imageaudit.batch.registry import (
    OciRef,
    RegistryError,
    attach_report,
    parse_oci_ref,
    pull_disk,
    referrers,
)
from tests.batch.registry_server import Registry, referrers_proxy

DISK = "application/x-qemu-disk"
HEX = "0123456789abcdef" * 4
MiB = 1024 * 1024


def make_qcow2(directory: Path, size_mb: int) -> Path:
    """An empty qcow2 whose header (its virtual size) makes its bytes unique to ``size_mb``."""
    path = directory / f"disk-{size_mb}.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), f"{size_mb}M"],
                   check=True)
    return path


def sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def client(registry: Registry | str) -> Any:
    host = registry if isinstance(registry, str) else registry.host
    return oras.provider.Registry(host, insecure=True)


def push(registry: Registry, name: str, files: list[tuple[Path, str]]) -> str:
    """Push ``files`` (path, media type) as one artefact with oras; its manifest digest."""
    response = client(registry).push(f"{registry.host}/{name}",
                                      files=[f"{path}:{media}" for path, media in files],
                                      disable_path_validation=True, quiet=True)
    assert response.status_code == 201, response.text
    return str(response.headers["Docker-Content-Digest"])


def put_manifest(registry: Registry, name: str, reference: str, doc: dict[str, Any]) -> str:
    """PUT a hand-built manifest or index; its digest."""
    body = json.dumps(doc).encode()
    repo, _, _ = name.partition(":")
    response = client(registry).do_request(
        f"http://{registry.host}/v2/{repo}/manifests/{reference}", "PUT", data=body,
        headers={"Content-Type": doc["mediaType"]})
    assert response.status_code == 201, response.text
    return "sha256:" + hashlib.sha256(body).hexdigest()


def fetch_manifest(registry: Registry | str, repo: str, reference: str) -> Any:
    response = client(registry).do_request(
        f"http://{registry if isinstance(registry, str) else registry.host}/v2/{repo}/manifests/"
        f"{reference}", "GET",
        headers={"Accept": f"{reg.OCI_MANIFEST}, {reg.OCI_INDEX}"})
    return response


def blob_gets(registry: Registry, digest: str) -> int:
    return sum(1 for method, path, _ in registry.requests()
               if method == "GET" and path.endswith(f"/blobs/{digest}"))


def wait_for(condition: Any, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def files_under(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file())


# --- references ------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected", "canonical"), [
    ("oci://registry.egi.eu/project/vm:1.0",
     OciRef("registry.egi.eu", "project/vm", "1.0", None), None),
    (f"oci://127.0.0.1:5000/a/b/c@sha256:{HEX}",
     OciRef("127.0.0.1:5000", "a/b/c", None, f"sha256:{HEX}"), None),
    (f"oci://Harbor.Example.ORG:443/p/r:T_1@sha512:{HEX * 2}",
     OciRef("harbor.example.org:443", "p/r", "T_1", f"sha512:{HEX * 2}"),
     f"oci://harbor.example.org:443/p/r:T_1@sha512:{HEX * 2}"),
    ("oci://[::1]:5000/r:latest", OciRef("[::1]:5000", "r", "latest", None), None),
    ("oci://localhost/a.b_c__d-e--f/x0:_9.-", OciRef("localhost", "a.b_c__d-e--f/x0", "_9.-"),
     None),
])
def test_valid_references_parse_and_print_canonically(text: str, expected: OciRef,
                                                       canonical: str | None) -> None:
    ref = parse_oci_ref(text)
    assert ref == expected
    assert str(ref) == (canonical or text)
    assert parse_oci_ref(str(ref)) == ref


@pytest.mark.parametrize(("text", "reason"), [
    ("docker://host/repo:1", "starts with oci://"),
    ("oci://host", "expected oci://REGISTRY"),
    ("oci:///repo:1", "expected oci://REGISTRY"),
    ("oci://host/repo", "no tag or digest"),
    ("oci://host/Repo:1", "repository name 'Repo' is not valid"),
    ("oci://host/a//b:1", "repository name"),
    ("oci://host/a/:1", "repository name"),
    ("oci://host/a_-b:1", "repository name"),
    ("oci://host/repo:", "nothing after ':'"),
    ("oci://host/repo:.tag", "tag '.tag' is not valid"),
    ("oci://host/repo:" + "t" * 129, "at most 128 characters"),
    ("oci://host/repo:a:b", "tag 'a:b'"),
    ("oci://host/repo@", "nothing after '@'"),
    (f"oci://host/repo@md5:{HEX[:32]}", "digest algorithm 'md5' is not accepted"),
    (f"oci://host/repo@sha256:{HEX.upper()}", "64 lowercase hex digits"),
    (f"oci://host/repo@sha256:{HEX[:-1]}", "64 lowercase hex digits"),
    (f"oci://host/repo@sha512:{HEX}", "128 lowercase hex digits"),
    ("oci://host/repo@sha256", "is not ALGORITHM:HEX"),
    (f"oci://host/repo@sha256:{HEX}@x", "64 lowercase hex digits"),
    ("oci://host:0/repo:1", "port '0'"),
    ("oci://host:65536/repo:1", "port '65536'"),
    ("oci://host:/repo:1", "port ''"),
    ("oci://ho_st/repo:1", "registry host 'ho_st'"),
    ("oci://-host/repo:1", "registry host '-host'"),
    ("oci://[::g]:5000/repo:1", "not a valid [IPv6] address"),
    ("oci://[::1]x/repo:1", "not a valid [IPv6] address"),
    ("oci://host/repo:1\n", "tag '1\\\\n'"),
    ("oci://host/" + "a" * 251 + ":1", "over 255 characters"),
    ("oci://host/" + "a" * 2000 + ":1", "at most 1024 characters"),
])
def test_invalid_references_are_refused_naming_the_reason(text: str, reason: str) -> None:
    with pytest.raises(RegistryError) as caught:
        parse_oci_ref(text)
    message = str(caught.value)
    assert reason in message
    assert message.startswith(text.replace("\n", "\\n")[:200])


def test_a_registry_error_survives_pickling() -> None:
    # Raised in Dask workers and sent back to the scheduler.
    error = RegistryError("oci://host/repo:1", "manifest 1 not found")
    again = pickle.loads(pickle.dumps(error))
    assert (type(again), str(again), again.reason) == (
        RegistryError, str(error), "manifest 1 not found")


def test_an_oci_ref_built_directly_is_checked_too() -> None:
    with pytest.raises(RegistryError, match="repository name 'Bad'"):
        OciRef("host", "Bad", "1")
    with pytest.raises(RegistryError, match="no tag or digest"):
        OciRef("host", "good")


# --- pulling ---------------------------------------------------------------------------------


def test_pull_by_tag_and_by_digest_give_the_same_verified_file(
        oci_registry: Registry, tmp_path: Path) -> None:
    disk = make_qcow2(tmp_path, 16)
    manifest = push(oci_registry, "pull/vm:1", [(disk, DISK)])
    cache = tmp_path / "cache"

    by_tag = pull_disk(parse_oci_ref(oci_registry.ref("pull/vm:1")), cache, max_bytes=MiB,
                       insecure=True)
    assert by_tag.layer_digest == sha256(disk) == sha256(by_tag.path)
    assert by_tag.path == cache / "oci/sha256" / sha256(disk).partition(":")[2]
    assert (by_tag.manifest_digest, by_tag.media_type, by_tag.size) == (
        manifest, DISK, disk.stat().st_size)

    for text in (f"pull/vm@{manifest}", f"pull/vm:1@{manifest}"):
        by_digest = pull_disk(parse_oci_ref(oci_registry.ref(text)), tmp_path / "other",
                              max_bytes=MiB, insecure=True)
        assert by_digest.path.read_bytes() == by_tag.path.read_bytes()
        assert (by_digest.manifest_digest, by_digest.layer_digest) == (
            manifest, by_tag.layer_digest)
    assert files_under(tmp_path / "other") == [by_digest.path]


def test_a_cached_disk_is_not_downloaded_again(oci_registry: Registry, tmp_path: Path) -> None:
    disk = make_qcow2(tmp_path, 17)
    push(oci_registry, "cache/vm:1", [(disk, DISK)])
    ref = parse_oci_ref(oci_registry.ref("cache/vm:1"))
    first = pull_disk(ref, tmp_path / "cache", max_bytes=MiB, insecure=True)
    layer = first.layer_digest
    wait_for(lambda: blob_gets(oci_registry, layer) == 1, "the first pull's blob GET is logged")

    # Gone from the registry: only a pull that does not download it can still succeed.
    oci_registry.blob_file(layer).unlink()
    again = pull_disk(ref, tmp_path / "cache", max_bytes=MiB, insecure=True)
    assert again == first
    time.sleep(0.3)
    assert blob_gets(oci_registry, layer) == 1
    with pytest.raises(RegistryError, match=f"downloading layer {layer}: HTTP 404"):
        pull_disk(ref, tmp_path / "empty-cache", max_bytes=MiB, insecure=True)


def test_a_manifest_that_does_not_hash_to_its_digest_is_refused(
        oci_registry: Registry, tmp_path: Path) -> None:
    disk = make_qcow2(tmp_path, 18)
    manifest = push(oci_registry, "badmanifest/vm:1", [(disk, DISK)])
    stored = oci_registry.blob_file(manifest)
    stored.write_bytes(stored.read_bytes().replace(b"disk-18.qcow2", b"evil-18.qcow2"))

    text = oci_registry.ref(f"badmanifest/vm@{manifest}")
    with pytest.raises(RegistryError) as caught:
        pull_disk(parse_oci_ref(text), tmp_path / "cache", max_bytes=MiB, insecure=True)
    assert str(caught.value).startswith(f"{text}: the manifest fetched by digest {manifest} "
                                        "hashes to sha256:")
    # By tag the registry still vouches for the old digest in Docker-Content-Digest.
    with pytest.raises(RegistryError, match="does not hash to the Docker-Content-Digest"):
        pull_disk(parse_oci_ref(oci_registry.ref("badmanifest/vm:1")), tmp_path / "cache",
                  max_bytes=MiB, insecure=True)
    assert files_under(tmp_path / "cache") == []


def test_a_blob_that_does_not_hash_to_its_digest_is_refused_and_removed(
        oci_registry: Registry, tmp_path: Path) -> None:
    disk = make_qcow2(tmp_path, 19)
    push(oci_registry, "badblob/vm:1", [(disk, DISK)])
    layer = sha256(disk)
    stored = oci_registry.blob_file(layer)
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))

    cache = tmp_path / "cache"
    with pytest.raises(RegistryError, match=f"layer {layer} hashes to sha256:.*other content"):
        pull_disk(parse_oci_ref(oci_registry.ref("badblob/vm:1")), cache, max_bytes=MiB,
                  insecure=True)
    assert files_under(cache) == []


def test_two_disk_layers_are_refused(oci_registry: Registry, tmp_path: Path) -> None:
    vdi = "application/x-virtualbox-vdi"
    push(oci_registry, "twodisks/vm:1",
         [(make_qcow2(tmp_path, 20), DISK), (make_qcow2(tmp_path, 21), vdi)])
    with pytest.raises(RegistryError, match="2 candidate disk layers, one expected"):
        pull_disk(parse_oci_ref(oci_registry.ref("twodisks/vm:1")), tmp_path / "cache",
                  max_bytes=MiB, insecure=True)


def test_a_disk_in_an_untyped_layer_is_found_by_its_header(
        oci_registry: Registry, tmp_path: Path) -> None:
    disk = make_qcow2(tmp_path, 22)
    notes = tmp_path / "README.txt"
    notes.write_text("a VM image\n")
    # oras pushes files as application/vnd.oci.image.layer.v1.tar unless told otherwise.
    push(oci_registry, "sniffed/vm:1", [(notes, "text/plain"), (disk, "")])
    pulled = pull_disk(parse_oci_ref(oci_registry.ref("sniffed/vm:1")), tmp_path / "cache",
                       max_bytes=MiB, insecure=True)
    assert (pulled.layer_digest, pulled.media_type) == (
        sha256(disk), "application/vnd.oci.image.layer.v1.tar")

    push(oci_registry, "sniffed/notes:1", [(notes, "")])
    with pytest.raises(RegistryError, match=r"no disk layer: .*vnd\.oci\.image\.layer\.v1\.tar"):
        pull_disk(parse_oci_ref(oci_registry.ref("sniffed/notes:1")), tmp_path / "cache",
                  max_bytes=MiB, insecure=True)


def test_the_size_cap_holds_for_the_declared_and_the_sent_size(
        oci_registry: Registry, tmp_path: Path) -> None:
    disk = make_qcow2(tmp_path, 23)
    size = disk.stat().st_size
    manifest = push(oci_registry, "big/vm:1", [(disk, DISK)])
    cache = tmp_path / "cache"
    with pytest.raises(RegistryError, match=f"is {size} bytes, over the cap of {size - 1} bytes"):
        pull_disk(parse_oci_ref(oci_registry.ref("big/vm:1")), cache, max_bytes=size - 1,
                  insecure=True)

    # A manifest that understates the layer: the bytes read are counted, not believed.
    doc = json.loads(fetch_manifest(oci_registry, "big/vm", manifest).content)
    doc["layers"][0]["size"] = size // 2
    put_manifest(oci_registry, "big/vm", "small", doc)
    with pytest.raises(RegistryError, match=f"sent more than its declared {size // 2} bytes"):
        pull_disk(parse_oci_ref(oci_registry.ref("big/vm:small")), cache, max_bytes=size,
                  insecure=True)
    assert files_under(cache) == []


def test_an_index_is_followed_to_its_one_linux_amd64_manifest(
        oci_registry: Registry, tmp_path: Path) -> None:
    amd64 = push(oci_registry, "multi/vm:amd64", [(make_qcow2(tmp_path, 24), DISK)])
    arm64 = push(oci_registry, "multi/vm:arm64", [(make_qcow2(tmp_path, 25), DISK)])

    def entry(digest: str, arch: str) -> dict[str, Any]:
        size = len(fetch_manifest(oci_registry, "multi/vm", digest).content)
        return {"mediaType": reg.OCI_MANIFEST, "digest": digest, "size": size,
                "platform": {"os": "linux", "architecture": arch}}

    put_manifest(oci_registry, "multi/vm", "both", {
        "schemaVersion": 2, "mediaType": reg.OCI_INDEX,
        "manifests": [entry(arm64, "arm64"), entry(amd64, "amd64")]})
    pulled = pull_disk(parse_oci_ref(oci_registry.ref("multi/vm:both")), tmp_path / "cache",
                       max_bytes=MiB, insecure=True)
    assert pulled.manifest_digest == amd64

    put_manifest(oci_registry, "multi/vm", "twice", {
        "schemaVersion": 2, "mediaType": reg.OCI_INDEX,
        "manifests": [entry(amd64, "amd64"), entry(arm64, "amd64")]})
    with pytest.raises(RegistryError, match=r"exactly one entry is linux/amd64; this one has 2 "
                                            r"\(platforms: linux/amd64, linux/amd64\)"):
        pull_disk(parse_oci_ref(oci_registry.ref("multi/vm:twice")), tmp_path / "cache",
                  max_bytes=MiB, insecure=True)


def test_an_unknown_repository_is_an_error_naming_the_reference(
        oci_registry: Registry, tmp_path: Path) -> None:
    text = oci_registry.ref("no/such/repo:1")
    with pytest.raises(RegistryError) as caught:
        pull_disk(parse_oci_ref(text), tmp_path / "cache", max_bytes=MiB, insecure=True)
    # Distribution says MANIFEST_UNKNOWN for a manifest of an unknown repository too.
    assert str(caught.value) == (f"{text}: repository no/such/repo not found: HTTP 404 "
                                 "(NAME_UNKNOWN: repository name not known to registry)")
    with pytest.raises(RegistryError, match="NAME_UNKNOWN"):
        referrers(parse_oci_ref(text), f"sha256:{HEX}", insecure=True)


def test_a_registry_that_does_not_answer_is_an_error_naming_the_reference(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reg, "RETRY_DELAY", 0.0)
    with pytest.raises(RegistryError, match=r"^oci://127\.0\.0\.1:9/vm:1: fetching the manifest: "
                                            "cannot connect"):
        pull_disk(parse_oci_ref("oci://127.0.0.1:9/vm:1"), tmp_path, max_bytes=MiB,
                  insecure=True)


class _Dripping(BaseHTTPRequestHandler):
    """A registry that serves a manifest at once and its disk a byte every 0.2 s."""

    protocol_version = "HTTP/1.1"
    blob = b"QFI\xfb" + bytes(96)
    layer = "sha256:" + hashlib.sha256(blob).hexdigest()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.endswith("/manifests/1"):
            body = json.dumps({
                "schemaVersion": 2, "mediaType": reg.OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2,
                           "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest()},
                "layers": [{"mediaType": DISK, "size": len(self.blob), "digest": self.layer}],
            }).encode()
            self.send_response(200)
            self.send_header("Content-Type", reg.OCI_MANIFEST)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.blob)))
        self.end_headers()
        try:
            for i in range(len(self.blob)):
                self.wfile.write(self.blob[i:i + 1])
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:
            pass


@contextmanager
def dripping_registry() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Dripping)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_disk_sent_a_byte_at_a_time_is_cut_at_the_deadline(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each byte comes well within the read timeout; only the download's deadline stops it.
    monkeypatch.setattr(reg, "DOWNLOAD_BASE_SECONDS", 1.0)
    with dripping_registry() as host:
        start = time.monotonic()
        with pytest.raises(RegistryError, match=f"downloading layer {_Dripping.layer} took "
                                                "longer than the 1 s allowed"):
            pull_disk(parse_oci_ref(f"oci://{host}/drip/vm:1"), tmp_path / "cache",
                      max_bytes=MiB, insecure=True)
    assert time.monotonic() - start < 5
    assert files_under(tmp_path / "cache") == []


# --- referrers -------------------------------------------------------------------------------


REPORT_TYPE = "application/vnd.imageaudit.report.v1+json"


def test_a_report_is_attached_once_through_the_referrers_tag(
        oci_registry: Registry, tmp_path: Path) -> None:
    subject = push(oci_registry, "attach/vm:1", [(make_qcow2(tmp_path, 26), DISK)])
    ref = parse_oci_ref(oci_registry.ref("attach/vm:1"))
    report = b'{"level": "base"}'

    first = attach_report(ref, subject, report, annotations={"org.example.level": "base"},
                          insecure=True)
    again = attach_report(ref, subject, report, annotations={"org.example.level": "base"},
                          insecure=True)
    assert again == first
    listed = referrers(ref, subject, insecure=True)
    assert [(e["digest"], e["artifactType"], e["annotations"]) for e in listed] == [
        (first, REPORT_TYPE, {"org.example.level": "base"})]

    # Distribution 2.8 has no referrers API: the list is the image index under the tag.
    tag = "sha256-" + subject.partition(":")[2]
    index = json.loads(fetch_manifest(oci_registry, "attach/vm", tag).content)
    assert [e["digest"] for e in index["manifests"]] == [first]

    referrer = json.loads(fetch_manifest(oci_registry, "attach/vm", first).content)
    subject_size = len(fetch_manifest(oci_registry, "attach/vm", subject).content)
    assert referrer["artifactType"] == REPORT_TYPE
    assert referrer["subject"] == {"mediaType": reg.OCI_MANIFEST, "digest": subject,
                                   "size": subject_size}
    assert referrer["config"] == {"mediaType": "application/vnd.oci.empty.v1+json",
                                  "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest(),
                                  "size": 2}
    assert [(la["mediaType"], la["digest"]) for la in referrer["layers"]] == [
        (REPORT_TYPE, "sha256:" + hashlib.sha256(report).hexdigest())]

    other = attach_report(ref, subject, b'{"level": "none"}', insecure=True)
    assert [e["digest"] for e in referrers(ref, subject, insecure=True)] == [first, other]
    # The disk artefact itself still pulls as before.
    assert pull_disk(ref, tmp_path / "cache", max_bytes=MiB, insecure=True).manifest_digest \
        == subject


def test_a_report_is_attached_once_where_the_registry_has_the_referrers_api(
        oci_registry: Registry, tmp_path: Path) -> None:
    subject = push(oci_registry, "api/vm:1", [(make_qcow2(tmp_path, 27), DISK)])
    with referrers_proxy(oci_registry) as proxy:
        ref = parse_oci_ref(f"oci://{proxy.host}/api/vm:1")
        first = attach_report(ref, subject, b'{"r": 1}', insecure=True)
        assert attach_report(ref, subject, b'{"r": 1}', insecure=True) == first
        # OCI-Subject in the push's answer was enough: the list was not even looked at.
        assert not [path for _, path in proxy.seen if "/referrers/" in path]
        listed = referrers(ref, subject, insecure=True)
    assert [(e["digest"], e["artifactType"]) for e in listed] == [(first, REPORT_TYPE)]
    # The registry keeps the list itself: no referrers tag was written.
    tag = "sha256-" + subject.partition(":")[2]
    assert fetch_manifest(oci_registry, "api/vm", tag).status_code == 404


def test_referrers_of_a_manifest_without_any_is_empty(
        oci_registry: Registry, tmp_path: Path) -> None:
    subject = push(oci_registry, "lonely/vm:1", [(make_qcow2(tmp_path, 28), DISK)])
    assert referrers(parse_oci_ref(oci_registry.ref("lonely/vm:1")), subject,
                     insecure=True) == []


def test_attaching_to_a_missing_subject_is_refused(oci_registry: Registry,
                                                   tmp_path: Path) -> None:
    push(oci_registry, "nosubject/vm:1", [(make_qcow2(tmp_path, 29), DISK)])
    ref = parse_oci_ref(oci_registry.ref("nosubject/vm:1"))
    with pytest.raises(RegistryError, match=f"subject manifest sha256:{HEX} not found"):
        attach_report(ref, f"sha256:{HEX}", b"{}", insecure=True)
    with pytest.raises(RegistryError, match="subject a sha256 digest is 64"):
        attach_report(ref, "sha256:abc", b"{}", insecure=True)
