"""``imageaudit image-list``: an endorser's list of local VM images, imported by a catalogue."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from imageaudit.cli.main import main
from imageaudit.example import build_examples
from integrations.appdb.server import open_catalogue
from tests.builders.debian import cache_root
from tests.builders.pki import Pki

VO = "demo.example.org"
BASE = "http://127.0.0.1:8000/images"


@pytest.fixture(scope="module")
def disks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    built = build_examples(cache_root() / "demo-examples")
    here = tmp_path_factory.mktemp("images")
    return {name: Path(shutil.copy2(path, here / path.name)) for name, path in built.items()}


def _write(disks: dict[str, Path], out: Path, *extra: str) -> int:
    return main(["image-list", str(disks["weak"]), str(disks["clean"]), "--vo", VO,
                 "--base-url", BASE, "-o", str(out), *extra])


def _registered(db: str) -> dict[str, str]:
    return {st.image.identifier: st.version.sha512 for st in open_catalogue(db).standings()}


def test_lists_each_image_with_what_its_file_and_disk_say(
        disks: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "my.image.list"
    assert _write(disks, out) == 2  # an unsigned list names its endorser
    assert "--endorser-dn and --endorser-ca" in capsys.readouterr().err
    assert _write(disks, out, "--endorser-dn", "/CN=Endorser", "--endorser-ca", "/CN=CA") == 0
    assert "2 images, unsigned" in capsys.readouterr().err
    doc = json.loads(out.read_text())["hv:imagelist"]
    assert doc["hv:uri"] == f"{BASE}/my.image.list"
    images = {e["hv:image"]["dc:identifier"]: e["hv:image"] for e in doc["hv:images"]}
    assert set(images) == {"example-weak", "example-clean"}
    weak = images["example-weak"]
    assert weak["sl:checksum:sha512"] == hashlib.sha512(disks["weak"].read_bytes()).hexdigest()
    assert weak["hv:size"] == disks["weak"].stat().st_size
    assert (weak["hv:format"], weak["sl:osname"], weak["sl:osversion"]) == ("qcow2", "Debian",
                                                                            "12")
    assert weak["hv:uri"] == f"{BASE}/example-weak.qcow2"
    assert weak["ad:vo"] == VO

    db = f"sqlite:///{tmp_path / 'catalogue.db'}"
    assert main(["catalogue", "import-imagelist", str(out), "--db", db]) == 0
    assert _registered(db) == {name: img["sl:checksum:sha512"] for name, img in images.items()}


def test_signed_list_verifies_against_the_ca_and_names_the_certificate(
        disks: dict[str, Path], tmp_path: Path, pki: Pki) -> None:
    out = tmp_path / "signed.list"
    assert _write(disks, out, "--sign-cert", str(pki.endorser_cert), "--sign-key",
                  str(pki.endorser_key), "--id-prefix", "site-") == 0
    data = out.read_bytes()
    assert data.startswith(b"MIME-Version: 1.0")
    assert pki.endorser_dn.encode() in data  # the endorser is the certificate's subject

    db = f"sqlite:///{tmp_path / 'catalogue.db'}"
    assert main(["catalogue", "import-imagelist", str(out), "--db", db,
                 "--verify-with", str(pki.other_ca_dir)]) != 0
    assert _registered(db) == {}
    assert main(["catalogue", "import-imagelist", str(out), "--db", db,
                 "--verify-with", str(pki.ca_dir)]) == 0
    assert set(_registered(db)) == {"site-example-weak", "site-example-clean"}

    tampered = tmp_path / "tampered.list"
    tampered.write_bytes(data.replace(b"example-clean.qcow2", b"example-cleam.qcow2", 1))
    assert main(["catalogue", "import-imagelist", str(tampered), "--db",
                 f"sqlite:///{tmp_path / 'other.db'}", "--verify-with", str(pki.ca_dir)]) != 0


def test_refuses_what_is_not_a_vm_image_naming_it(
        disks: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a disk\n")
    out = tmp_path / "x.list"
    code = main(["image-list", str(disks["weak"]), str(notes), "--vo", VO, "--base-url", BASE,
                 "--endorser-dn", "/CN=E", "--endorser-ca", "/CN=CA", "-o", str(out)])
    assert code == 2
    assert str(notes) in capsys.readouterr().err
    assert not out.exists()


def test_sign_cert_without_key_and_a_bad_base_url_are_usage_errors(
        disks: dict[str, Path], tmp_path: Path, pki: Pki,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.list"
    assert _write(disks, out, "--sign-cert", str(pki.endorser_cert)) == 2
    assert "--sign-cert and --sign-key go together" in capsys.readouterr().err
    assert main(["image-list", str(disks["weak"]), "--vo", VO, "--base-url", "file:///srv",
                 "--endorser-dn", "/CN=E", "--endorser-ca", "/CN=CA", "-o", str(out)]) == 2
    assert "--base-url file:///srv" in capsys.readouterr().err
    assert not out.exists()
