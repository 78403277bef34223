"""The one hash-string parser, as the accounts collector and the verifier read it."""

from __future__ import annotations

import pytest

from imageaudit.facts.accounts.password_field import classify_password
from imageaudit.passwords.cost import analyse_hash
from imageaudit.passwords.crypt_format import (
    MalformedHash,
    ScryptParams,
    Setting,
    parse_setting,
    yescrypt_params,
)
from imageaudit.passwords.crypt_worker import LibXCrypt

FAKE_43 = "b" * 43


@pytest.mark.parametrize(
    ("prefix", "count"),
    [(b"$y$", 5), (b"$y$", 9), (b"$gy$", 5), (b"$6$", 0), (b"$6$", 80000), (b"$5$", 0),
     (b"$2b$", 5), (b"$1$", 0), (b"", 0), (b"_", 725), (b"$sha1$", 0)],
)  # fmt: skip
def test_collector_and_verifier_read_the_same_parameters(prefix: bytes, count: int) -> None:
    value = LibXCrypt().hash(b"pw", prefix, count).decode()
    setting = parse_setting(value)
    record = classify_password(value)
    assert setting is not None
    assert record.algorithm == setting.algorithm
    if setting.scrypt is not None:
        assert (record.n, record.r, record.p) == (
            1 << setting.scrypt.n_log2,
            setting.scrypt.r,
            setting.scrypt.p,
        )
    elif setting.log2_cost is not None:
        assert record.log2_cost == setting.log2_cost
    elif setting.algorithm != "sha1crypt":  # the collector does not read sha1crypt's count
        assert record.rounds == setting.rounds or setting.rounds is None


def test_yescrypt_optional_fields() -> None:
    # "j" is yescrypt-RW; "/" after N and r says a t follows ("." is its minimum, 1).
    assert yescrypt_params("j9T/.") == ScryptParams(12, 32, 1, t=1, classic=False)
    with pytest.raises(MalformedHash, match=r"^bad parameter character$"):
        yescrypt_params("j9T/")
    # A hash that claims a t and has none is malformed for both readers.
    claimed = f"$y$j9T/$salt${FAKE_43}"
    assert classify_password(claimed).problems == ("malformed yescrypt parameters",)
    assert analyse_hash(claimed).skip_reason == "malformed hash: bad parameter character"
    with_t = f"$y$j9T/.$salt${FAKE_43}"
    assert classify_password(with_t).description == "yescrypt, N=4096 r=32 p=1"
    assert analyse_hash(with_t).cost == "N=2^12 r=32 p=1 t=1"


def test_strict_reading_needs_the_whole_format() -> None:
    assert parse_setting("$6$salt$") is None  # no digest
    assert parse_setting(f"$6$rounds=6000$salt${'a' * 86}") == Setting("sha512crypt", 6000)
    assert parse_setting("abJnggxhB/yWI") == Setting("descrypt")


def test_a_rounds_field_of_thousands_of_digits_is_malformed_not_a_crash() -> None:
    from imageaudit.facts.accounts.password_field import classify_password

    field = "$6$rounds=" + "9" * 5000 + "$salt$" + "a" * 86
    result = classify_password(field)
    assert "rounds= has 5000 digits; not a usable count" in result.problems
