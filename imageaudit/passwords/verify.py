"""Check password hashes against default and weak passwords, safely.

Cost first: every hash is classified and its cost read from the string
(:mod:`imageaudit.passwords.cost`); hashes over the caps are skipped and reported. The rest
are verified through libxcrypt in a child process (:mod:`imageaudit.passwords.crypt_worker`) that
limits its own address space and CPU time; the parent enforces a wall clock per account and
a time budget per image, kills the child on overrun and reports the hash as skipped.

Independent of the accounts collector: callers turn their records into :class:`PasswordJob`.
Follows crypt(3) and crypt(5) of libxcrypt 4.4.
"""

from __future__ import annotations

import json
import math
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from imageaudit.passwords.cost import CostCaps, HashAnalysis, analyse_hash
from imageaudit.passwords.dictionary import (
    Candidate,
    DefaultPassword,
    PasswordDictionary,
    PasswordDictionaryError,
    default_data_dir,
    load_dictionary,
)

ResultStatus = Literal["match", "no_match", "skipped", "error"]
MIB = 1024 * 1024
MAX_REPLY_BYTES = 64 * 1024
# Below this much time left a verification round trip is not worth starting.
MIN_SLOT_SECONDS = 0.02
STARTUP_TIMEOUT_S = 10.0
# The time budget left is shared among at most this many accounts still to verify.
SHARE_ACCOUNTS = 64


@dataclass(frozen=True, slots=True)
class PasswordJob:
    account: str
    hash: str


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps on cost per guess, time per account and per image, and the child's resources."""

    caps: CostCaps = field(default_factory=CostCaps)
    account_timeout_s: float = 5.0
    total_budget_s: float = 20.0
    worker_address_space: int = 512 * MIB
    max_candidates: int = 200


@dataclass(frozen=True, slots=True)
class PasswordResult:
    account: str
    status: ResultStatus
    password: str | None
    origin: str | None
    reason: str | None
    algorithm: str
    elapsed_s: float = field(default=0.0, metadata={"internal": True})
    reference: str | None = None
    cost: str | None = None
    candidates_tried: int = 0


@dataclass(frozen=True, slots=True)
class _Reply:
    match: int | None
    rejected: int
    errno: int


@dataclass(frozen=True, slots=True)
class _Failure:
    reason: str
    status: ResultStatus


class CryptWorker:
    """One child running ``crypt_worker.py``; restarted after it is killed or dies."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> CryptWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> subprocess.Popen[bytes]:
        # The CPU limit is cumulative for the child's life, which the image budget bounds.
        cpu = math.ceil(self._limits.total_budget_s) + 2
        worker = Path(__file__).with_name("crypt_worker.py")
        return subprocess.Popen(
            [
                sys.executable,
                "-I",
                "-S",
                str(worker),
                "--address-space",
                str(self._limits.worker_address_space),
                "--cpu-seconds",
                str(cpu),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            env={},
        )

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()

    def verify(self, setting: str, phrases: Sequence[str], timeout: float) -> _Reply | _Failure:
        """One round trip: does any phrase produce ``setting``? Kills the child on overrun."""
        if self._proc is None:
            self._proc = self._start()
            ready = self._read_line(self._proc, time.monotonic() + STARTUP_TIMEOUT_S)
            if isinstance(ready, _Failure):
                return ready
        proc = self._proc
        assert proc.stdin is not None
        request = json.dumps({"setting": setting, "phrases": list(phrases)}).encode("ascii")
        try:
            proc.stdin.write(request + b"\n")
            proc.stdin.flush()
        except BrokenPipeError:
            return self._died(proc)
        line = self._read_line(proc, time.monotonic() + timeout)
        if isinstance(line, _Failure):
            return line
        return _parse_reply(line)

    def _read_line(self, proc: subprocess.Popen[bytes], deadline: float) -> bytes | _Failure:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        started = time.monotonic()
        buf = b""
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self._kill()
                waited = deadline - started
                return _Failure(
                    f"verification timed out after {waited:.2f} s; worker killed", "skipped"
                )
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, MAX_REPLY_BYTES)
            if not chunk:
                return self._died(proc)
            buf += chunk
            if len(buf) > MAX_REPLY_BYTES:
                self._kill()
                return _Failure("verification worker sent an oversized reply", "error")
        return buf.split(b"\n", 1)[0]

    def _died(self, proc: subprocess.Popen[bytes]) -> _Failure:
        self._kill()
        code = proc.returncode
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            if -code in (signal.SIGXCPU, signal.SIGKILL, signal.SIGSEGV):
                return _Failure(
                    f"verification worker died ({name}): CPU or memory limit reached", "skipped"
                )
            return _Failure(f"verification worker died ({name})", "error")
        return _Failure(f"verification worker exited with status {code}", "error")


def _parse_reply(line: bytes) -> _Reply | _Failure:
    try:
        data = json.loads(line)
        if "error" in data:
            return _Failure(f"verification worker: {data['error']}", "error")
        match = data["match"]
        return _Reply(
            match if isinstance(match, int) else None, int(data["rejected"]), int(data["errno"])
        )
    except (ValueError, KeyError, TypeError) as exc:
        return _Failure(f"unreadable reply from verification worker: {exc}", "error")


def check_passwords(
    jobs: Sequence[PasswordJob], dictionary: PasswordDictionary, limits: Limits | None = None
) -> list[PasswordResult]:
    """Verify each job's hash against its candidates; one result per job, in order.

    Costly, empty, locked and unrecognised hashes are ``skipped`` with a reason. The time
    budget of the image is shared among the next accounts still to verify (at most
    :data:`SHARE_ACCOUNTS`), so one slow account cannot starve the others; when it runs out
    the remaining accounts are skipped and say so.
    """
    limits = limits or Limits()
    started = time.monotonic()
    analyses = [analyse_hash(job.hash, limits.caps) for job in jobs]
    to_verify = sum(1 for a in analyses if a.verifiable)
    results: list[PasswordResult] = []
    with CryptWorker(limits) as worker:
        for job, analysis in zip(jobs, analyses, strict=True):
            t0 = time.monotonic()
            if not analysis.verifiable:
                results.append(_result(job, analysis, "skipped", t0, reason=analysis.skip_reason))
                continue
            remaining = limits.total_budget_s - (t0 - started)
            # Shared among the next few accounts, not all of them: with thousands, an equal
            # share is below a round trip and nothing would be verified at all.
            share = max(min(to_verify, SHARE_ACCOUNTS), 1)
            slot = min(limits.account_timeout_s, remaining / share)
            to_verify -= 1
            results.append(_check_one(worker, job, analysis, dictionary, limits, slot, t0))
    return results


def _check_one(
    worker: CryptWorker,
    job: PasswordJob,
    analysis: HashAnalysis,
    dictionary: PasswordDictionary,
    limits: Limits,
    slot: float,
    t0: float,
) -> PasswordResult:
    if slot < MIN_SLOT_SECONDS:
        reason = f"the password time budget of {limits.total_budget_s:g} s for this image is spent"
        return _result(job, analysis, "skipped", t0, reason=reason)
    candidates = dictionary.candidates_for(job.account)[: limits.max_candidates]
    # Leave headroom under the wall clock: estimates are from the reference machine.
    fit = (
        int(slot * 0.8 / analysis.guess_seconds) if analysis.guess_seconds > 0 else len(candidates)
    )
    if fit < 1:
        reason = (
            f"one guess (about {analysis.guess_seconds:.3g} s) does not fit the {slot:.2f} s "
            f"left for this account"
        )
        return _result(job, analysis, "skipped", t0, reason=reason)
    tried = candidates[:fit]
    reply = worker.verify(job.hash, [c.password for c in tried], timeout=slot)
    if isinstance(reply, _Failure):
        return _result(job, analysis, reply.status, t0, reason=reply.reason)
    if reply.match is not None and 0 <= reply.match < len(tried):
        return _result(
            job, analysis, "match", t0, candidate=tried[reply.match], tried=reply.match + 1
        )
    if reply.rejected >= len(tried):
        why = os.strerror(reply.errno) if reply.errno else "rejected"
        reason = (
            f"libxcrypt could not compute this hash ({why}): the setting is invalid or needs "
            f"more than the worker's {limits.worker_address_space // MIB} MiB address space"
        )
        return _result(job, analysis, "error", t0, reason=reason, tried=len(tried))
    notes = []
    if len(tried) < len(candidates):
        notes.append(f"tried {len(tried)} of {len(candidates)} candidates within the time budget")
    if reply.rejected:
        notes.append(f"libxcrypt rejected {reply.rejected} candidates")
    return _result(job, analysis, "no_match", t0, reason="; ".join(notes) or None, tried=len(tried))


def _result(
    job: PasswordJob,
    analysis: HashAnalysis,
    status: ResultStatus,
    t0: float,
    *,
    reason: str | None = None,
    candidate: Candidate | None = None,
    tried: int = 0,
) -> PasswordResult:
    return PasswordResult(
        account=job.account,
        status=status,
        password=candidate.password if candidate else None,
        origin=candidate.origin if candidate else None,
        reason=reason,
        algorithm=analysis.algorithm,
        elapsed_s=round(time.monotonic() - t0, 6),
        reference=candidate.reference if candidate else None,
        cost=analysis.cost,
        candidates_tried=tried,
    )


__all__ = [
    "Candidate",
    "CostCaps",
    "CryptWorker",
    "DefaultPassword",
    "HashAnalysis",
    "Limits",
    "PasswordDictionary",
    "PasswordDictionaryError",
    "PasswordJob",
    "PasswordResult",
    "analyse_hash",
    "check_passwords",
    "default_data_dir",
    "load_dictionary",
]
