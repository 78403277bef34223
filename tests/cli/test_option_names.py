"""One name per thing on the real command line: ``--catalogue URL`` and the ``--publish`` flag,
``--feeds DIR`` for the feed cache, the catalogue's database under ``$XDG_DATA_HOME``; the old
spellings still work and say, on one line, what replaces them."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from imageaudit.cli.catalogue_options import catalogue_url
from imageaudit.cli.main import build_parser
from integrations.appdb.process import CatalogueProcess
from integrations.appdb.server import open_catalogue
from tests.builders.container import docker_archive
from tests.builders.example_tree import clean_scenario
from tests.builders.reports import make_report
from tests.publish.stub_catalogue import CatalogueState, StubCatalogue
from tests.vulns.osv_data import ALL_RECORDS, write_zip

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "auditor-token-1"
NO_CATALOGUE = {"IMAGEAUDIT_CATALOGUE": None, "IMAGEAUDIT_CATALOGUE_TOKEN": None,
                "IMAGEAUDIT_CATALOGUE_DB": None}


def _cli(*args: str, cwd: Path = ROOT, env: dict[str, str | None] | None = None
         ) -> subprocess.CompletedProcess[str]:
    environ = dict(os.environ)
    environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), environ.get("PYTHONPATH")) if p)
    for name, value in {**NO_CATALOGUE, **(env or {})}.items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    return subprocess.run([sys.executable, "-m", "imageaudit", *args], cwd=cwd, env=environ,
                          capture_output=True, text=True, timeout=300, check=False)


def _warning(old: str, new: str) -> str:
    return f"imageaudit: warning: {old} is deprecated; use {new}\n"


# -- the feed cache: --feeds DIR everywhere ---------------------------------------------------


def test_feeds_sync_and_show_take_feeds_dir_and_the_old_spellings_warn(tmp_path: Path) -> None:
    dump = write_zip(tmp_path / "debian-all.zip", ALL_RECORDS)
    feeds = tmp_path / "feeds"
    synced = _cli("feeds", "sync", "--osv", str(dump), "--feeds", str(feeds))
    assert (synced.returncode, synced.stderr) == (0, "")
    shown = _cli("feeds", "show", "--feeds", str(feeds))
    assert (shown.returncode, shown.stderr) == (0, "")
    assert shown.stdout.startswith(f"snapshot {feeds}/")
    assert "osv Debian/all.zip:" in shown.stdout or f"{len(ALL_RECORDS)} entries" in shown.stdout

    old_show = _cli("feeds", "show", str(feeds))
    assert (old_show.returncode, old_show.stdout) == (0, shown.stdout)
    assert old_show.stderr == _warning("feeds show DIR", "feeds show --feeds DIR")

    old = tmp_path / "old"
    old_sync = _cli("feeds", "sync", "--osv", str(dump), "--dir", str(old))
    assert old_sync.returncode == 0, old_sync.stderr
    assert old_sync.stderr == _warning("--dir", "--feeds")
    assert _cli("feeds", "show", "--feeds", str(old)).stdout.startswith(f"snapshot {old}/")


def test_feeds_show_reads_the_default_cache(tmp_path: Path) -> None:
    dump = write_zip(tmp_path / "debian-all.zip", ALL_RECORDS)
    env: dict[str, str | None] = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    assert _cli("feeds", "sync", "--osv", str(dump), env=env).returncode == 0
    shown = _cli("feeds", "show", env=env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"snapshot {tmp_path / 'cache' / 'imageaudit' / 'feeds'}/")


# -- the catalogue's database: one, under $XDG_DATA_HOME -------------------------------------


def test_catalogue_db_is_the_same_file_from_every_directory(tmp_path: Path) -> None:
    env: dict[str, str | None] = {"XDG_DATA_HOME": str(tmp_path / "data")}
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    made = [_cli("catalogue", "token", "create", "--role", "reader", "--name", name,
                 cwd=cwd, env=env) for name, cwd in (("a", one), ("b", two))]
    assert [m.returncode for m in made] == [0, 0], [m.stderr for m in made]
    db = tmp_path / "data" / "imageaudit" / "catalogue.db"
    assert db.is_file()
    assert list(one.iterdir()) == [] and list(two.iterdir()) == []
    catalogue = open_catalogue(f"sqlite:///{db}")
    assert [catalogue.authenticate(m.stdout.strip()) is not None for m in made] == [True, True]
    helped = _cli("catalogue", "serve", "--help", env=env)
    assert f"sqlite:///{db}" in "".join(helped.stdout.split())


def test_catalogue_db_env_still_wins(tmp_path: Path) -> None:
    chosen = tmp_path / "chosen.db"
    done = _cli("catalogue", "token", "create", "--role", "reader", cwd=tmp_path,
                env={"XDG_DATA_HOME": str(tmp_path / "data"),
                     "IMAGEAUDIT_CATALOGUE_DB": f"sqlite:///{chosen}"})
    assert done.returncode == 0, done.stderr
    assert chosen.is_file() and not (tmp_path / "data").exists()


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CatalogueProcess]:
    """The catalogue on its default database (``$XDG_DATA_HOME`` in ``tmp_path``)."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("IMAGEAUDIT_CATALOGUE_DB", raising=False)
    db = f"sqlite:///{tmp_path / 'data' / 'imageaudit' / 'catalogue.db'}"
    with CatalogueProcess(db, tmp_path / "catalogue.log", cwd=ROOT) as server:
        yield server


def test_serve_says_its_database_and_remote_commands_take_catalogue(
    served: CatalogueProcess, tmp_path: Path
) -> None:
    log = (tmp_path / "catalogue.log").read_text()
    assert f"imageaudit catalogue: database {served.db}\n" in log
    env: dict[str, str | None] = {"XDG_DATA_HOME": str(tmp_path / "data")}
    reader = _cli("catalogue", "token", "create", "--role", "reader", env=env).stdout.strip()

    new = _cli("catalogue", "campaign", "list", "--format", "json", "--catalogue", served.url,
               "--token", reader)
    assert (new.returncode, new.stdout, new.stderr) == (0, "[]\n", "")
    old = _cli("catalogue", "campaign", "list", "--format", "json", "--url", served.url,
               "--token", reader)
    assert (old.returncode, old.stdout) == (0, "[]\n")
    assert old.stderr == _warning("--url", "--catalogue")
    by_env = _cli("catalogue", "campaign", "list", "--format", "json", "--catalogue", served.url,
                  env={"IMAGEAUDIT_CATALOGUE_TOKEN": reader})
    assert (by_env.returncode, by_env.stdout) == (0, "[]\n")
    no_token = _cli("catalogue", "campaign", "list", "--catalogue", served.url)
    assert no_token.returncode == 2
    assert no_token.stderr == ("imageaudit: error: --catalogue needs --token or "
                               "$IMAGEAUDIT_CATALOGUE_TOKEN\n")


# -- the catalogue's URL: --catalogue, and --publish a flag ----------------------------------


@pytest.fixture
def stub() -> Iterator[StubCatalogue]:
    server = StubCatalogue(CatalogueState(tokens={TOKEN: "auditor"})).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def auditor(tmp_path: Path) -> list[str]:
    key = tmp_path / "auditor.key"
    assert _cli("keys", "generate", str(key)).returncode == 0
    return ["--token", TOKEN, "--signing-key", str(key),
            "--store", f"sqlite:///{tmp_path / 'results.db'}"]


def test_scan_publishes_with_the_flag_and_catalogue(
    tmp_path: Path, stub: StubCatalogue, auditor: list[str]
) -> None:
    image = docker_archive(clean_scenario(), tmp_path / "clean.tar")
    stub.state.images.add(hashlib.sha512(image.read_bytes()).hexdigest())
    done = _cli("scan", str(image), "-q", "--publish", "--catalogue", stub.url, *auditor)
    assert done.returncode == 0, done.stderr
    assert [p.path for p in stub.state.posts()] == ["/api/v1/reports"]
    assert f"published to {stub.url}" in done.stderr


def test_scan_publish_names_what_is_missing_before_scanning(tmp_path: Path) -> None:
    missing = tmp_path / "missing.qcow2"
    no_url = _cli("scan", str(missing), "--publish")
    assert (no_url.returncode, no_url.stdout) == (2, "")
    assert no_url.stderr == ("imageaudit: error: --publish needs --catalogue URL or "
                             "$IMAGEAUDIT_CATALOGUE\n")
    swallowed = _cli("scan", "--publish", str(missing))
    assert swallowed.returncode == 2
    assert swallowed.stderr.splitlines()[-1] == (
        f"imageaudit scan: error: --publish takes no value (the catalogue is --catalogue URL): "
        f"put '{missing}' before --publish or after --")


def test_publish_takes_the_catalogue_from_the_environment(
    tmp_path: Path, stub: StubCatalogue, auditor: list[str]
) -> None:
    import json

    report = make_report("a" * 128)
    stub.state.images.add("a" * 128)
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report), encoding="utf-8")
    none = _cli("publish", str(path), *auditor)
    assert (none.returncode, none.stderr) == (
        2, "imageaudit: error: publish needs --catalogue URL or $IMAGEAUDIT_CATALOGUE\n")
    done = _cli("publish", str(path), *auditor, env={"IMAGEAUDIT_CATALOGUE": stub.url})
    assert done.returncode == 0, done.stderr
    assert [p.path for p in stub.state.posts()] == ["/api/v1/reports"]


def test_old_spellings_parse_into_the_new_options(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    notify = parser.parse_args(["catalogue", "campaign", "notify", "c", "--dry-run",
                                "--catalogue-url", "https://cat.example.org"])
    assert notify.catalogue_url == "https://cat.example.org"
    assert capsys.readouterr().err == _warning("--catalogue-url", "--catalogue")
    contain = parser.parse_args(["cloud", "contain", "--cloud", "c", "IMG", "--incident", "i",
                                 "--reason", "r", "--publish", "https://cat.example.org"])
    assert (contain.publish, contain.catalogue, catalogue_url(contain)) == (
        True, None, "https://cat.example.org")
    assert capsys.readouterr().err == _warning("--publish URL", "--catalogue URL --publish")
    new = parser.parse_args(["cloud", "release", "--cloud", "c", "--incident", "i", "--publish",
                             "--catalogue", "https://cat.example.org"])
    assert (new.publish, catalogue_url(new)) == (True, "https://cat.example.org")
    assert capsys.readouterr().err == ""


def test_catalogue_variable_never_turns_a_local_command_remote() -> None:
    from imageaudit.cli.config import parse_args
    from imageaudit.cli.main import build_parser

    env = {"IMAGEAUDIT_CATALOGUE": "http://catalogue.example.org"}
    local = parse_args(build_parser(), ["catalogue", "suspend", "img", "--reason", "r"], env=env)
    assert local.catalogue is None  # the local database, as without the variable
    flush = parse_args(build_parser(), ["outbox", "flush"], env=env)
    assert flush.catalogue is None
