"""``imageaudit batch`` end to end, through its command line, on a real Dask cluster.

Images are small distinct qcow2 disks and docker archives built by the test builders; image
lists name them at URLs of a real HTTP server on 127.0.0.1. The batch runs on a local cluster
of worker processes, or on a scheduler and two workers started here as separate processes
(``dask scheduler``, ``dask worker``), the way a site runs one.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.batch.httpserver import FileServer
from tests.builders.batch import build_images, image_list, sha512_of
from tests.builders.debian import cache_root

ROOT = Path(__file__).resolve().parents[2]
DASK = Path(sys.executable).with_name("dask")


@pytest.fixture(scope="module")
def images() -> list[Path]:
    """Six distinct images: qcow2 disks and docker archives in turn."""
    return build_images(cache_root() / "batch", 6, kinds=("qcow2", "docker-archive"))


def _env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "XDG_CACHE_HOME": str(tmp / "cache"), "XDG_DATA_HOME": str(tmp / "data"),
            "PYTHONPATH": str(ROOT)}


def _batch_cmd(tmp: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "imageaudit", "batch", "--store", str(tmp / "results.db"),
            "--output-dir", str(tmp / "out"), "--summary", str(tmp / "summary.json"), *args]


def run_batch(tmp: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_batch_cmd(tmp, *args), cwd=ROOT, env=_env(tmp), capture_output=True,
                          text=True, timeout=timeout, check=False)


def summary(tmp: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tmp / "summary.json").read_text())
    return data


def by_source(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {img["source"]: img for img in doc["images"]}


def table_count(tmp: Path, table: str) -> int:
    with sqlite3.connect(tmp / "results.db") as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_lists_wrong_checksum_404_and_a_shared_image(images: list[Path], tmp_path: Path) -> None:
    files = {f"/{p.name}": p.read_bytes() for p in images[:3]}
    with FileServer(files) as srv:
        a, b, c = images[:3]
        list_a = image_list([("img-a", srv.url(f"/{a.name}"), a),
                             ("img-b", srv.url(f"/{b.name}"), b),
                             ("img-missing", srv.url("/gone.qcow2"), images[3])],
                            identifier="list-a")
        # In list B, image C's checksum is that of another file: it must be refused.
        doc = json.loads(image_list([("img-a2", srv.url(f"/{a.name}"), a),
                                     ("img-c", srv.url(f"/{c.name}"), c)], identifier="list-b"))
        doc["hv:imagelist"]["hv:images"][1]["hv:image"]["sl:checksum:sha512"] = "ab" * 64
        (tmp_path / "a.list").write_bytes(list_a)
        (tmp_path / "b.list").write_text(json.dumps(doc))
        done = run_batch(tmp_path, str(tmp_path / "a.list"), str(tmp_path / "b.list"),
                         "--workers", "2", "--strict")
        gets = [r.path for r in srv.gets()]
    assert done.returncode == 1, done.stderr
    results = by_source(summary(tmp_path))
    shared = results[srv.url(f"/{a.name}")]
    assert shared["error"] is None and shared["level"] in ("none", "basic", "standard")
    assert shared["inputs"] == [str(tmp_path / "a.list"), str(tmp_path / "b.list")]
    assert shared["sha512"] == sha512_of(a)
    assert gets.count(f"/{a.name}") == 1, "an image in two lists is fetched and audited once"
    assert results[srv.url(f"/{b.name}")]["error"] is None
    missing = results[srv.url("/gone.qcow2")]["error"]
    assert "404" in missing and "/gone.qcow2" in missing
    wrong = results[srv.url(f"/{c.name}")]["error"]
    assert "SHA-512 mismatch" in wrong, wrong
    assert not list((tmp_path / "cache").rglob(c.name)), "a refused download is not kept"
    assert table_count(tmp_path, "audits") == 2
    # The per-image reports are where the summary says.
    for img in (shared, results[srv.url(f"/{b.name}")]):
        report = json.loads((tmp_path / "out" / img["reports"]["json"]).read_text())
        assert report["certification"]["image_sha512"] == img["sha512"]
        assert report["image"]["source"] == img["source"]
    assert (tmp_path / "out" / "index.html").is_file()


def _session_processes(sid: int) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == sid:
                found.append(proc)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return found


def test_kill_9_of_the_driver_then_the_same_command_resumes(images: list[Path],
                                                            tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for p in images:
        (folder / p.name).symlink_to(p)  # a directory of images (links to the built ones)
    driver = subprocess.Popen(_batch_cmd(tmp_path, str(folder), "--workers", "1"), cwd=ROOT,
                              env=_env(tmp_path), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    done_before = 0
    while time.monotonic() < deadline and driver.poll() is None:
        if (tmp_path / "results.db").exists():
            try:
                done_before = table_count(tmp_path, "audits")
            except sqlite3.OperationalError:
                done_before = 0
            if done_before >= 2:
                break
        time.sleep(0.1)
    assert driver.poll() is None, "the batch ended before it could be interrupted"
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    # What the driver started (its workers and their audits) does not outlive it for long.
    deadline = time.monotonic() + 60
    while _session_processes(driver.pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = _session_processes(driver.pid)
    for proc in left:
        proc.kill()
    assert not left, f"processes left running after the driver died: {left}"
    done_before = table_count(tmp_path, "audits")
    assert 2 <= done_before < len(images)

    again = run_batch(tmp_path, str(folder), "--workers", "2")
    assert again.returncode == 0, again.stderr
    doc = summary(tmp_path)
    assert len(doc["images"]) == len(images)
    assert all(img["error"] is None for img in doc["images"]), doc["images"]
    assert sum(img["cached"] for img in doc["images"]) == done_before
    assert table_count(tmp_path, "audits") == len(images)
    assert table_count(tmp_path, "reports") == len(images), "nothing stored twice"
    # A third run reads no image at all: every file's hash is remembered.
    third = run_batch(tmp_path, str(folder), "--workers", "2")
    assert third.returncode == 0
    assert all(img["cached"] for img in summary(tmp_path)["images"])
    assert f"{len(images)} already audited" in third.stderr


def test_time_and_memory_caps_are_the_image_s_errors(images: list[Path], tmp_path: Path) -> None:
    done = run_batch(tmp_path, str(images[0]), str(images[1]), "--workers", "1",
                     "--memory", "8M", "--strict")
    assert done.returncode == 1, done.stderr
    errors = [img["error"] for img in summary(tmp_path)["images"]]
    assert all(e and "memory cap of 8 MiB" in e for e in errors), errors
    done = run_batch(tmp_path, str(images[0]), "--workers", "1", "--timeout", "0.2")
    assert done.returncode == 0, done.stderr  # not --strict: reported, not fatal
    (img,) = summary(tmp_path)["images"]
    assert "per-image timeout of 0.2 s" in img["error"]
    assert not any("imageaudit.batch.child" in " ".join(p.cmdline())
                   for p in psutil.process_iter() if p.pid != os.getpid()
                   and _alive(p)), "an audit outlived its timeout"
    # Nothing was certified, so nothing is remembered as done: the next run audits them.
    assert table_count(tmp_path, "audits") == 0


def _alive(proc: psutil.Process) -> bool:
    try:
        return bool(proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """A scheduler and two workers (each under its nanny), separate processes on 127.0.0.1."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT),
           # One worker death fails the task that was running on it, as a site would set it.
           "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0",
           "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    log = (tmp_path / "dask.log").open("wb")
    procs = [subprocess.Popen([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], env=env, stdout=log, stderr=log)]
    try:
        for i in range(2):
            procs.append(subprocess.Popen(
                [str(DASK), "worker", address, "--nthreads", "1", "--nworkers", "1",
                 "--no-dashboard", "--name", f"w{i}", "--local-directory",
                 str(tmp_path / f"w{i}")], env=env, stdout=log, stderr=log))
        _wait_workers(address, 2)
        yield address, procs
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


def _wait_workers(address: str, n: int, timeout: float = 90) -> None:
    from distributed import Client

    with Client(address, timeout="30s") as client:  # type: ignore[no-untyped-call]
        client.wait_for_workers(n, timeout=timeout)


def _worker_fetching(port: int) -> psutil.Process | None:
    for proc in psutil.process_iter():
        try:
            if any(c.raddr and c.raddr.port == port for c in proc.net_connections("tcp")):
                return proc
        except psutil.Error:
            continue
    return None


def test_external_scheduler_survives_a_worker_killed_mid_image(
        images: list[Path], tmp_path: Path,
        dask_cluster: tuple[str, list[subprocess.Popen[bytes]]]) -> None:
    address, _ = dask_cluster
    good = images[2:5]
    victim = images[5]
    with FileServer({f"/{p.name}": p.read_bytes() for p in good}) as fast, \
            FileServer({f"/{victim.name}": victim.read_bytes()}) as slow:
        slow.delay = 60.0  # the victim's download hangs until its worker is killed
        listing = image_list([(f"img-{i}", fast.url(f"/{p.name}"), p) for i, p in enumerate(good)]
                             + [("victim", slow.url(f"/{victim.name}"), victim)])
        (tmp_path / "sites.list").write_bytes(listing)
        driver = subprocess.Popen(_batch_cmd(tmp_path, str(tmp_path / "sites.list"),
                                             "--scheduler", address), cwd=ROOT,
                                  env=_env(tmp_path), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        port = int(slow.base.rsplit(":", 1)[1])
        deadline = time.monotonic() + 120
        worker = None
        while worker is None and time.monotonic() < deadline and driver.poll() is None:
            worker = _worker_fetching(port)
            time.sleep(0.2)
        assert worker is not None, "no worker ever fetched the victim"
        worker.kill()
        _, err = driver.communicate(timeout=300)
    assert driver.returncode == 0, err
    results = by_source(summary(tmp_path))
    dead = results[slow.url(f"/{victim.name}")]["error"]
    assert "worker" in dead and "died" in dead, dead
    for p in good:
        assert results[fast.url(f"/{p.name}")]["error"] is None
    # The nanny replaced the worker: the cluster has two again.
    _wait_workers(address, 2, timeout=60)


def _on_a_terminal(cmd: list[str], env: dict[str, str], timeout: float = 300) -> str:
    """Run ``cmd`` with its stderr on a pseudo-terminal; what it wrote there."""
    import pty
    import select

    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**env, "COLUMNS": "160", "TERM": "xterm"},
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    proc.wait(10)
    os.close(master)
    return b"".join(chunks).decode("utf-8", "replace")


def test_progress_bar_on_a_terminal_lines_in_a_log_nothing_with_q(images: list[Path],
                                                                  tmp_path: Path) -> None:
    shown = _on_a_terminal(_batch_cmd(tmp_path, str(images[0]), str(images[1]),
                                      str(tmp_path / "missing.qcow2"), "--workers", "1"),
                           _env(tmp_path))
    assert "3/3" in shown and "1 failed" in shown and "/min" in shown and "ETA" in shown, shown
    logged = run_batch(tmp_path, str(images[0]), str(tmp_path / "missing.qcow2"),
                       "--workers", "1")
    lines = [ln for ln in logged.stderr.splitlines() if "] " in ln]
    assert len(lines) == 2 and all(re.match(r"^\d\d:\d\d:\d\d \[\d/2\] ", ln) for ln in lines)
    assert any("ERROR" in ln and "missing.qcow2" in ln for ln in lines), lines
    quiet = run_batch(tmp_path, str(images[0]), "--workers", "1", "-q")
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_signed_lists_over_https_verified_one_from_another_ca_refused(
        images: list[Path], tmp_path: Path) -> None:
    from tests.builders.pki import CA_DN, ENDORSER_DN, make_pki, openssl

    pki = make_pki(tmp_path / "pki")
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
            str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1")
    first, second = images[0], images[1]
    with FileServer({f"/{first.name}": first.read_bytes(), f"/{second.name}": second.read_bytes()},
                    tls=(cert, key)) as srv:
        good = image_list([("signed-img", srv.url(f"/{first.name}"), first)], dn=ENDORSER_DN,
                          ca=CA_DN, identifier="signed-list")
        other = image_list([("other-img", srv.url(f"/{second.name}"), second)], dn=ENDORSER_DN,
                           ca=CA_DN, identifier="other-list")
        srv.files["/good.list"] = pki.sign(good)
        srv.files["/plain.list"] = other  # not signed: refused under --verify-with
        env = {**_env(tmp_path), "SSL_CERT_FILE": str(cert)}
        done = subprocess.run(
            _batch_cmd(tmp_path, srv.url("/good.list"), srv.url("/plain.list"),
                       "--verify-with", str(pki.ca_dir), "--workers", "1", "--strict"),
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 1, done.stderr  # one input could not be audited
        results = by_source(summary(tmp_path))
        audited = results[srv.url(f"/{first.name}")]
        assert audited["error"] is None and audited["identifier"] == "signed-img"
        plain = results[srv.url("/plain.list")]["error"]
        assert "refused" in plain and "not signed" in plain, plain
        refused = subprocess.run(
            _batch_cmd(tmp_path, srv.url("/good.list"), "--verify-with", str(pki.other_ca_dir),
                       "--workers", "1"),
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert refused.returncode == 0, refused.stderr  # not --strict
    (only,) = summary(tmp_path)["images"]
    assert only["source"] == srv.url("/good.list") and "refused" in only["error"], only


def test_the_audit_key_follows_rules_and_force_audits_again(images: list[Path],
                                                           tmp_path: Path) -> None:
    import shutil

    image = str(images[0])
    assert run_batch(tmp_path, image, "--workers", "1").returncode == 0
    assert not summary(tmp_path)["images"][0]["cached"]
    assert summary(tmp_path)["images"][0]["level"] == "none"
    assert run_batch(tmp_path, image, "--workers", "1").returncode == 0
    assert summary(tmp_path)["images"][0]["cached"]
    # Other rules (one rule's text changed): the earlier result does not apply.
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "imageaudit" / "ruleset", rules)
    rule = next(rules.glob("*/password_empty.yaml"))
    rule.write_text(rule.read_text() + "\n# reviewed\n")
    assert run_batch(tmp_path, image, "--workers", "1", "--rules", str(rules)).returncode == 0
    assert not summary(tmp_path)["images"][0]["cached"]
    assert table_count(tmp_path, "audits") == 2
    # --force audits again and replaces the row: nothing stored twice.
    assert run_batch(tmp_path, image, "--workers", "1", "--force").returncode == 0
    assert not summary(tmp_path)["images"][0]["cached"]
    assert table_count(tmp_path, "audits") == 2


def test_an_audit_process_that_crashes_is_that_image_s_error(images: list[Path]) -> None:
    import threading

    from imageaudit.batch.task import TaskSettings, run_child

    crashed: list[int] = []

    def crash_the_child() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not crashed:
            for proc in psutil.Process().children(recursive=True):
                try:
                    if "imageaudit.batch.child" in proc.cmdline():
                        proc.send_signal(signal.SIGSEGV)
                        crashed.append(proc.pid)
                        return
                except psutil.Error:
                    continue
            time.sleep(0.005)

    killer = threading.Thread(target=crash_the_child)
    killer.start()
    result = run_child(str(images[0]), "crash-test", TaskSettings(cache_dir="/nonexistent",
                                                                 max_image_bytes=2**30))
    killer.join()
    assert crashed, "the audit process was never seen"
    assert result == {"error": "the audit process died of SIGSEGV"}


def test_the_audit_key_follows_rule_selection_path_skips_and_tailoring(
        images: list[Path], tmp_path: Path) -> None:
    image = str(images[0])
    tailoring = tmp_path / "tailoring.yaml"
    tailoring.write_text("version: 1\nrules:\n  updates_pending:\n    severity: low\n")

    def scopes() -> list[Any]:
        return [json.loads(p.read_text())["certification"].get("scope")
                for p in sorted((tmp_path / "out" / "reports").glob("*.json"))]

    runs = [(), ("--skip-rule", "password_empty"), ("--skip-rule", "password_empty"),
            ("--skip-dirs", "/opt"), ("--tailoring", str(tailoring))]
    cached = []
    for extra in runs:
        done = run_batch(tmp_path, image, "--workers", "1", *extra)
        assert done.returncode == 0, done.stderr
        cached.append(summary(tmp_path)["images"][0]["cached"])
        if extra == ("--skip-rule", "password_empty"):
            assert scopes() == [{"skipped_rules": ["password_empty"], "skipped_dirs": [],
                                 "skipped_files": [], "dropped_findings": 0,
                                 "tailoring": None}]
    # A narrowed or tailored audit never reuses another's result, nor the other way round.
    assert cached == [False, False, True, False, False]
    assert table_count(tmp_path, "audits") == 4
    done = run_batch(tmp_path, image, "--workers", "1", "--skip-rule", "nope")
    assert done.returncode == 2
    assert "--rule/--skip-rule: no rule 'nope' in " in done.stderr
