"""Password verification through libxcrypt in a limited child, and the dictionaries."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from imageaudit.passwords.cost import ITOA64, CostCaps, analyse_hash
from imageaudit.passwords.crypt_worker import LibXCrypt
from imageaudit.passwords.verify import (
    CryptWorker,
    Limits,
    PasswordDictionary,
    PasswordDictionaryError,
    PasswordJob,
    PasswordResult,
    check_passwords,
    load_dictionary,
)

SALT_16 = "$6$saltsaltsaltsalt$"
FAKE_SHA512 = "a" * 86
FAKE_43 = "b" * 43


@pytest.fixture(scope="module")
def lib() -> LibXCrypt:
    return LibXCrypt()


@pytest.fixture(scope="module")
def dictionary() -> PasswordDictionary:
    return load_dictionary()


def _one(
    job: PasswordJob, dictionary: PasswordDictionary, limits: Limits | None = None
) -> PasswordResult:
    (result,) = check_passwords([job], dictionary, limits or Limits())
    return result


def _encode_uint32(value: int, minimum: int) -> str:
    """yescrypt's variable-length encoding, written from its description, to build hashes."""
    value -= minimum
    start, end, extra, bits = 0, 47, 0, 0
    while value >= (end + 1 - start) << bits:
        value -= (end + 1 - start) << bits
        start = end + 1
        end = start + (62 - end) // 2
        extra += 1
        bits += 6
    out = ITOA64[start + (value >> bits)]
    for _ in range(extra):
        bits -= 6
        out += ITOA64[(value >> bits) & 0x3F]
    return out


def _yescrypt(n_log2: int, r: int, extra: str = "") -> str:
    params = "j" + _encode_uint32(n_log2, 1) + _encode_uint32(r, 1) + extra
    return f"$y${params}$saltsaltsalt${FAKE_43}"


# --- each algorithm matches its right password and not a wrong one -----------------------

ALGORITHMS = [
    (b"$y$", 0, "yescrypt", "N=2^12 r=32 p=1"),
    (b"$6$", 0, "sha512crypt", "rounds=5000"),
    (b"$5$", 0, "sha256crypt", "rounds=5000"),
    (b"$1$", 0, "md5crypt", "1000 iterations"),
    (b"$2b$", 5, "bcrypt", "cost=5"),
    (b"", 0, "des", "25 iterations"),
    (b"$gy$", 0, "gost-yescrypt", "N=2^12 r=32 p=1"),
]


@pytest.mark.parametrize(("prefix", "count", "algorithm", "cost"), ALGORITHMS)
def test_algorithm_matches_right_password_only(
    lib: LibXCrypt,
    dictionary: PasswordDictionary,
    prefix: bytes,
    count: int,
    algorithm: str,
    cost: str,
) -> None:
    right = lib.hash(b"raspberry", prefix, count).decode()
    wrong = lib.hash(b"Xq9-not-in-any-list", prefix, count).decode()
    hit = _one(PasswordJob("pi", right), dictionary)
    assert (hit.status, hit.password, hit.algorithm, hit.cost) == (
        "match",
        "raspberry",
        algorithm,
        cost,
    )
    assert hit.origin == (
        "default password of user pi in Raspberry Pi OS (Raspbian) images before April 2022"
    )
    assert (
        hit.reference == "https://www.raspberrypi.com/news/raspberry-pi-bullseye-update-april-2022/"
    )
    assert hit.candidates_tried == 1
    miss = _one(PasswordJob("pi", wrong), dictionary)
    assert (miss.status, miss.password, miss.reason, miss.algorithm) == (
        "no_match",
        None,
        None,
        algorithm,
    )
    assert miss.candidates_tried == len(dictionary.candidates_for("pi"))


def test_candidate_order_and_origins(lib: LibXCrypt, dictionary: PasswordDictionary) -> None:
    cands = dictionary.candidates_for("oracle")
    assert [c.origin for c in cands[:3]] == [
        "default password of user oracle in Oracle Database Developer VM "
        "(DB Developer Day / App Development VM)",
        "username-as-password variant",
        "common weak password",
    ]
    # "oracle" is both the documented default and the user name: tried once, as the default.
    assert [c.password for c in cands].count("oracle") == 1
    assert cands[-1].password == "osboxes.org"
    assert cands[-1].origin == (
        "default password of every account in OSBoxes.org ready-made VirtualBox/VMware images "
        "(root uses the same password)"
    )
    web = _one(PasswordJob("www", lib.hash(b"www123", b"$6$").decode()), dictionary)
    assert (web.status, web.password, web.origin) == (
        "match",
        "www123",
        "username-as-password variant",
    )
    weak = _one(PasswordJob("alice", lib.hash(b"letmein", b"$6$").decode()), dictionary)
    assert (weak.status, weak.origin, weak.reference) == (
        "match",
        "common weak password",
        "ruleset/data/weak-passwords.txt",
    )


# --- hostile hashes finish fast and say why --------------------------------------------------

HOSTILE = [
    (
        f"$6$rounds=999999999$saltsalt${FAKE_SHA512}",
        "sha512crypt",
        "sha512crypt rounds=999999999 exceeds the cap of 100000",
    ),
    (
        _yescrypt(30, 32),
        "yescrypt",
        "yescrypt N=2^30 exceeds the cap of 2^16",
    ),
    (
        _yescrypt(16, 64),
        "yescrypt",
        "yescrypt needs 512 MiB per guess (128*r*N), over the cap of 64 MiB",
    ),
    (
        "$2b$31$" + "c" * 53,
        "bcrypt",
        "bcrypt cost 31 (2^31 iterations) exceeds the cap of 12",
    ),
    (
        "$7$" + "I" + "U...." + "/...." + "salt$" + FAKE_43,
        "scrypt",
        "scrypt N=2^20 exceeds the cap of 2^16",
    ),
]


@pytest.mark.parametrize(("hash_", "algorithm", "reason"), HOSTILE)
def test_hostile_hash_is_skipped_fast(
    dictionary: PasswordDictionary, hash_: str, algorithm: str, reason: str
) -> None:
    started = time.monotonic()
    result = _one(PasswordJob("root", hash_), dictionary)
    assert time.monotonic() - started < 2.0
    assert (result.status, result.algorithm, result.reason) == ("skipped", algorithm, reason)
    assert result.candidates_tried == 0


def test_yescrypt_parameters_decode_like_libxcrypt(lib: LibXCrypt) -> None:
    # crypt_gensalt_rn writes the parameters; the decoder must read back what it wrote.
    for count, cost in (
        (1, "N=2^10 r=8 p=1"),
        (2, "N=2^11 r=8 p=1"),
        (5, "N=2^12 r=32 p=1"),
        (9, "N=2^16 r=32 p=1"),
        (11, "N=2^18 r=32 p=1"),
    ):
        setting = lib.gensalt(b"$y$", count).decode()
        analysis = analyse_hash(f"{setting}${FAKE_43}", CostCaps(max_yescrypt_n_log2=63))
        assert (analysis.algorithm, analysis.cost) == ("yescrypt", cost)
    over = analyse_hash(f"{lib.gensalt(b'$y$', 9).decode()}${FAKE_43}")
    assert over.skip_reason == "yescrypt needs 256 MiB per guess (128*r*N), over the cap of 64 MiB"
    # Multi-character numbers and the optional p/t fields round-trip through the decoder.
    for n_log2, r in ((1, 1), (16, 2), (48, 8), (49, 1000), (63, 1 << 20)):
        decoded = analyse_hash(_yescrypt(n_log2, r), CostCaps(max_yescrypt_n_log2=63))
        assert decoded.cost == f"N=2^{n_log2} r={r} p=1"
    with_p = analyse_hash(
        _yescrypt(12, 8, _encode_uint32(3, 1) + _encode_uint32(4, 2) + _encode_uint32(2, 1))
    )
    assert with_p.cost == "N=2^12 r=8 p=4 t=2"


def test_default_yescrypt_cost_estimate() -> None:
    analysis = analyse_hash(f"$y$j9T$saltsalt${FAKE_43}")
    assert (analysis.cost, analysis.memory_bytes) == ("N=2^12 r=32 p=1", 16 * 1024 * 1024)
    assert analysis.verifiable and 0.01 < analysis.guess_seconds < 0.1


@pytest.mark.parametrize(
    ("value", "algorithm", "reason"),
    [
        ("", "none", "empty password field: nothing to verify"),
        ("!", "none", "account is locked (field starts with '!')"),
        ("!!", "none", "account is locked (field starts with '!')"),
        ("*", "none", "account is locked (field starts with '*')"),
        (f"!{SALT_16}{FAKE_SHA512}", "sha512crypt", "account is locked (field starts with '!')"),
        ("*LK*", "unknown", "account is locked (field starts with '*')"),
        ("x", "unknown", "unrecognised hash format"),
        (
            f"$6$rounds=12abc$salt${FAKE_SHA512}",
            "unknown",
            "malformed hash: sha512crypt rounds field '12abc' is not a number",
        ),
        ("$6$" + "s" * 600, "unknown", "hash field of 603 characters exceeds 512"),
    ],
)
def test_empty_locked_and_malformed_are_not_verified(
    dictionary: PasswordDictionary, value: str, algorithm: str, reason: str
) -> None:
    result = _one(PasswordJob("root", value), dictionary)
    assert (result.status, result.algorithm, result.reason) == ("skipped", algorithm, reason)


def test_locked_real_hash_is_never_verified(lib: LibXCrypt, dictionary: PasswordDictionary) -> None:
    locked = "!" + lib.hash(b"root", b"$6$").decode()
    result = _one(PasswordJob("root", locked), dictionary)
    assert (result.status, result.password, result.candidates_tried) == ("skipped", None, 0)


# --- the child: star results, wall clock, memory limit, budget ---------------------------


def test_star_result_is_a_failure_not_a_match(
    lib: LibXCrypt, dictionary: PasswordDictionary
) -> None:
    # libxcrypt's failure token is "*0" (or "*1"); it must never equal a stored "hash".
    assert lib.crypt(b"anything", b"*0") is None
    with CryptWorker(Limits()) as worker:
        reply = worker.verify("*0", ["*0", "anything", ""], timeout=5.0)
    assert (getattr(reply, "match", "x"), getattr(reply, "rejected", -1)) == (None, 3)
    # A setting libxcrypt refuses ($6$ rounds=10, under its minimum of 1000): error, not match.
    bad = f"$6$rounds=10$saltsalt${FAKE_SHA512}"
    result = _one(PasswordJob("root", bad), dictionary)
    assert (result.status, result.reason) == (
        "error",
        "libxcrypt could not compute this hash (Invalid argument): the setting is invalid or "
        "needs more than the worker's 512 MiB address space",
    )


def test_wall_clock_overrun_kills_child_and_next_account_still_runs(
    lib: LibXCrypt, dictionary: PasswordDictionary
) -> None:
    # cost_scale makes the estimate wildly optimistic, so only the wall clock can stop it.
    limits = Limits(caps=CostCaps(cost_scale=1e-6), account_timeout_s=0.3)
    slow = lib.hash(b"Xq9-not-in-any-list", b"$2b$", 10).decode()
    fast = lib.hash(b"vagrant", b"$6$").decode()
    started = time.monotonic()
    first, second = check_passwords(
        [PasswordJob("root", slow), PasswordJob("vagrant", fast)], dictionary, limits
    )
    assert time.monotonic() - started < 2.0
    assert (first.status, first.reason) == (
        "skipped",
        "verification timed out after 0.30 s; worker killed",
    )
    assert (second.status, second.password) == ("match", "vagrant")


def test_memory_limit_is_set_in_the_child(lib: LibXCrypt) -> None:
    # A real yescrypt hash needing 64 MiB (N=2^14, r=32): fails under a 64 MiB address space,
    # verifies under 128 MiB. The limit is the child's; the parent is untouched.
    hash_ = lib.hash(b"pw", b"$y$", 7).decode()
    assert analyse_hash(hash_).memory_bytes == 64 * 1024 * 1024
    with CryptWorker(Limits(worker_address_space=64 * 1024 * 1024)) as worker:
        starved = worker.verify(hash_, ["x", "pw"], timeout=5.0)
    with CryptWorker(Limits(worker_address_space=128 * 1024 * 1024)) as worker:
        enough = worker.verify(hash_, ["x", "pw"], timeout=5.0)
    assert (getattr(starved, "match", "x"), getattr(starved, "rejected", -1)) == (None, 2)
    assert (getattr(enough, "match", "x"), getattr(enough, "rejected", -1)) == (1, 0)


def test_cpu_limit_is_set_in_the_child(lib: LibXCrypt) -> None:
    # total_budget_s=0 gives the child 2 s of CPU; a long job is killed by SIGXCPU first.
    slow = lib.hash(b"pw", b"$y$", 9).decode()  # N=2^16, r=32: about 0.5 s per guess here
    with CryptWorker(Limits(total_budget_s=0.0)) as worker:
        reply = worker.verify(slow, [str(i) for i in range(12)], timeout=30.0)
    assert getattr(reply, "reason", None) == (
        "verification worker died (SIGXCPU): CPU or memory limit reached"
    )


def test_time_budget_is_shared_and_reported(lib: LibXCrypt, dictionary: PasswordDictionary) -> None:
    # bcrypt 10 is ~60 ms a guess; 0.5 s shared by three accounts trims each candidate list.
    hashes = [lib.hash(b"Xq9-not-in-any-list", b"$2b$", 10).decode() for _ in range(3)]
    limits = Limits(total_budget_s=0.5)
    started = time.monotonic()
    results = check_passwords(
        [PasswordJob(f"u{i}", h) for i, h in enumerate(hashes)], dictionary, limits
    )
    # Without the budget the three lists would take about 3 x 50 x 60 ms = 9 s; the bound leaves
    # room for a loaded machine (child start-up) while still failing if the budget is ignored.
    assert time.monotonic() - started < 5.0
    for r in results:
        assert r.status == "no_match"
        assert r.reason is not None and r.reason.startswith(f"tried {r.candidates_tried} of ")
        assert r.reason.endswith(" candidates within the time budget")
    exhausted = check_passwords(
        [PasswordJob("late", hashes[0])], dictionary, Limits(total_budget_s=0.0)
    )
    assert (exhausted[0].status, exhausted[0].reason) == (
        "skipped",
        "the password time budget of 0 s for this image is spent",
    )


# --- the dictionary files -----------------------------------------------------------------


def test_dictionary_files_are_valid_and_sourced(dictionary: PasswordDictionary) -> None:
    assert 40 <= len(dictionary.weak) <= 60
    assert ("pi", "raspberry") in {(e.user, e.password) for e in dictionary.defaults}
    for entry in dictionary.defaults:
        assert entry.reference.startswith("https://"), entry


def test_dictionary_refuses_unquoted_numbers_and_missing_source(tmp_path: Path) -> None:
    (tmp_path / "weak-passwords.txt").write_text("# provenance\n123456\n")
    defaults = tmp_path / "default-passwords.yaml"
    defaults.write_text(
        "version: 1\nentries:\n  - {user: root, password: 1234, source: x, reference: y}\n"
    )
    with pytest.raises(PasswordDictionaryError, match=r"entries\.0\.password"):
        load_dictionary(tmp_path)
    defaults.write_text("version: 1\nentries:\n  - {user: root, password: '1234', reference: y}\n")
    with pytest.raises(PasswordDictionaryError, match=r"entries\.0\.source"):
        load_dictionary(tmp_path)
    defaults.write_text(
        "version: 1\nentries:\n  - {user: root, password: '1234', source: x, reference: y}\n"
    )
    assert load_dictionary(tmp_path).candidates_for("root")[0].password == "1234"


def test_image_bytes_reach_libxcrypt_unchanged(
    lib: LibXCrypt, dictionary: PasswordDictionary
) -> None:
    # Names and hashes from the image are decoded with surrogateescape; the child must hash
    # the original bytes, so a non-UTF-8 name used as its own password is still found.
    name = b"\xffus".decode("utf-8", "surrogateescape")
    result = _one(PasswordJob(name, lib.hash(b"\xffus", b"$6$").decode()), dictionary)
    assert (result.status, result.password, result.origin) == (
        "match",
        name,
        "username-as-password",
    )


def test_thousands_of_accounts_verify_the_first_within_the_budget(
    lib: LibXCrypt, dictionary: PasswordDictionary
) -> None:
    # An equal share of the budget among 3000 accounts is below one round trip: nothing
    # would be verified. It goes to the next few accounts instead; the rest say it is spent.
    weak = lib.hash(b"root", b"$6$", 0).decode()
    other = lib.hash(b"Xq9-not-in-any-list", b"$6$", 0).decode()
    jobs = [PasswordJob("root", weak)] + [PasswordJob(f"u{i}", other) for i in range(3000)]
    started = time.monotonic()
    results = check_passwords(jobs, dictionary, Limits(total_budget_s=4.0))
    assert time.monotonic() - started < 12.0
    assert (results[0].status, results[0].password) == ("match", "root")
    spent = [
        r for r in results if r.reason == "the password time budget of 4 s for this image is spent"
    ]
    # Most of them: the budget is gone long before the end (timings vary with the load).
    assert len(spent) > 2000
