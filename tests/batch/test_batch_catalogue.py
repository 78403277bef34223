"""``imageaudit batch catalogue:URL/vo/NAME --publish``: a real catalogue server lists the
image versions it holds, the batch fetches and audits them and publishes the signed reports,
and the catalogue withdraws the weak one. A second run publishes nothing twice."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from imageaudit.store import OutboxState, ResultsStore
from integrations.appdb.process import CatalogueProcess
from tests.batch.httpserver import FileServer
from tests.batch.test_batch import ROOT, run_batch, summary
from tests.builders.batch import build_images, image_list
from tests.builders.catalogue import ready_catalogue
from tests.builders.debian import cache_root

pytest.importorskip("uvicorn")

VO = "batch.test.vo"


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def test_catalogue_vo_audited_published_once_and_weak_withdrawn(tmp_path: Path) -> None:
    weak, clean = build_images(cache_root() / "batch", 2)  # variant 0 is weak, 1 clean
    db = f"sqlite:///{tmp_path / 'catalogue.db'}"
    with FileServer({"/weak.qcow2": weak.read_bytes(), "/clean.qcow2": clean.read_bytes()}) as srv:
        listing = tmp_path / "vo.list"
        listing.write_bytes(image_list([("batch-weak", srv.url("/weak.qcow2"), weak),
                                        ("batch-clean", srv.url("/clean.qcow2"), clean)], vo=VO))
        auditor = ready_catalogue(db, listing, tmp_path)
        with CatalogueProcess(db, tmp_path / "catalogue.log", cwd=ROOT) as server:
            args = (f"catalogue:{server.url}/vo/{VO}", "--workers", "2", "--require", "basic",
                    "--publish", "--catalogue", server.url, "--token", auditor.token,
                    "--signing-key", str(auditor.key))
            first = run_batch(tmp_path, *args)
            assert first.returncode == 3, first.stderr  # the weak image is below basic
            assert first.stderr.count("(stored)") == 2
            results = {r["identifier"]: r for r in summary(tmp_path)["images"]}
            assert results["batch-weak"]["level"] == "none"
            assert results["batch-clean"]["level"] != "none"
            assert results["batch-weak"]["vo"] == VO
            standing = {i["image_id"]: i for i in _get(f"{server.url}/api/v1/images?vo={VO}")}
            assert standing["batch-weak"]["listed"] is False
            assert standing["batch-clean"]["listed"] is True
            assert standing["batch-clean"]["level"] == results["batch-clean"]["level"]
            listed = _get(f"{server.url}/api/v1/vos/{VO}/image.list")["hv:imagelist"]["hv:images"]
            assert [e["hv:image"]["dc:identifier"] for e in listed] == ["batch-clean"]

            second = run_batch(tmp_path, *args)
            assert second.returncode == 3, second.stderr
            assert all(r["cached"] for r in summary(tmp_path)["images"])
            assert "(stored)" not in second.stderr, "a report was published twice"
    with ResultsStore.open(f"sqlite:///{tmp_path / 'results.db'}") as store:
        assert store.count(OutboxState.SENT) == 2
        assert store.count(OutboxState.PENDING) == 0
