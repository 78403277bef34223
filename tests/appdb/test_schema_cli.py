"""Migrations match the models (both backends); the catalogue CLI works on a database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from imageaudit.signing import key_id, public_pem
from integrations.appdb.catalogue import Catalogue
from integrations.appdb.cli import main
from integrations.appdb.db import Base
from integrations.appdb.server import open_catalogue
from tests.appdb.helpers import image_entry, imagelist, sha512_of
from tests.builders.pki import Pki


def test_migrations_match_models(catalogue: Catalogue) -> None:
    with catalogue.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_cli_import_suspend_token(tmp_path: Path, pki: Pki,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    listing = tmp_path / "list.smime"
    listing.write_bytes(pki.sign(imagelist([image_entry("img-a", sha512_of("a"), "fedcloud", "A")],
                                           dn=pki.endorser_dn, ca=pki.ca_dn)))
    assert main(["catalogue", "import-imagelist", str(listing), "--verify-with",
                 str(pki.ca_dir), "--db", db]) == 0
    assert capsys.readouterr().out == (
        "imported image list 3a9bd1b3-6a9a-4b5c-9d0e-0f1e2d3c4b5a (signed by "
        "/C=EU/O=Test Grid/CN=Image Endorser): 1 image(s)\n")
    assert main(["catalogue", "import-imagelist", str(listing), "--verify-with",
                 str(pki.other_ca_dir), "--db", db]) == 2
    assert capsys.readouterr().err.startswith(
        "imageaudit: error: image list refused: signature verification failed: ")
    assert main(["catalogue", "suspend", "img-a", "--reason", "leaked key", "--db", db]) == 0
    assert open_catalogue(db).standing("img-a").suspension is not None
    assert main(["catalogue", "unsuspend", "img-a", "--db", db]) == 0
    assert open_catalogue(db).standing("img-a").suspension is None
    assert main(["catalogue", "suspend", "nope", "--reason", "x", "--db", db]) == 2
    assert capsys.readouterr().err.endswith("imageaudit: error: no image nope\n")
    assert main(["catalogue", "token", "create", "--role", "auditor", "--db", db]) == 0
    token = capsys.readouterr().out.strip()
    assert open_catalogue(db).authenticate(token) is not None


def test_cli_auditor_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    key = Ed25519PrivateKey.generate()
    kid = key_id(key.public_key())
    pub = tmp_path / "alice.pub"
    pub.write_text(public_pem(key.public_key()))
    assert main(["catalogue", "auditor", "add", "alice", "--public-key", str(pub),
                 "--db", db]) == 0
    assert capsys.readouterr().out == f"auditor alice: key {kid} registered\n"
    assert main(["catalogue", "auditor", "add", "bob", "--public-key", str(pub), "--db", db]) == 2
    assert capsys.readouterr().err == f"imageaudit: error: key {kid} is already registered\n"
    pub.write_text("not a key")
    assert main(["catalogue", "auditor", "add", "carol", "--public-key", str(pub),
                 "--db", db]) == 2
    assert capsys.readouterr().err.startswith(
        "imageaudit: error: public key: not an Ed25519 public key (")
    assert main(["catalogue", "auditor", "add", "bad name", "--public-key", str(pub),
                 "--db", db]) == 2
    assert capsys.readouterr().err == "imageaudit: error: auditor name 'bad name' is not a name\n"
    assert main(["catalogue", "auditor", "revoke", kid, "--db", db]) == 0
    assert capsys.readouterr().out == f"key {kid} revoked\n"
    assert main(["catalogue", "auditor", "list", "--format", "json", "--db", db]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["auditor"], row["key_id"], row["revoked"]) == ("alice", kid, True)
