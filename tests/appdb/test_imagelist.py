"""Importing HEPiX image lists: signature, signer identity, dates, refusal messages."""

from __future__ import annotations

from datetime import timedelta

import pytest

from integrations.appdb.db import utcnow
from integrations.appdb.imagelist import ImageListError, parse_imagelist
from tests.appdb.helpers import image_entry, imagelist, sha512_of, stamp
from tests.builders.pki import Pki

IMAGES = [image_entry("img-a", sha512_of("a"), "fedcloud", "Alpha")]


def signed(pki: Pki, **kw: str) -> bytes:
    dn = kw.pop("dn", pki.endorser_dn)
    return pki.sign(imagelist(IMAGES, dn=dn, ca=kw.pop("ca", pki.ca_dn), **kw))


def test_signed_list_verifies_and_names_the_signer(pki: Pki) -> None:
    il = parse_imagelist(signed(pki), ca_dir=pki.ca_dir, now=utcnow())
    assert il.signer is not None
    assert il.signer.subject == "/C=EU/O=Test Grid/CN=Image Endorser"
    assert il.signer.issuer == "/C=EU/O=Test Grid/CN=Test Grid CA"
    assert [(i.identifier, i.sha512, i.vo) for i in il.images] == [
        ("img-a", sha512_of("a"), "fedcloud")]


def test_rfc4514_dn_is_accepted(pki: Pki) -> None:
    data = signed(pki, dn="CN=Image Endorser,O=Test Grid,C=EU")
    assert parse_imagelist(data, ca_dir=pki.ca_dir, now=utcnow()).endorser_dn.startswith("CN=")


def test_tampered_signature_is_refused(pki: Pki) -> None:
    data = signed(pki).replace(b'"Alpha"', b'"Alphx"')
    with pytest.raises(ImageListError, match=r"^signature verification failed: "):
        parse_imagelist(data, ca_dir=pki.ca_dir, now=utcnow())


def test_unknown_ca_is_refused(pki: Pki) -> None:
    with pytest.raises(ImageListError, match=r"^signature verification failed: .*certificate"):
        parse_imagelist(signed(pki), ca_dir=pki.other_ca_dir, now=utcnow())


def test_wrong_dn_is_refused(pki: Pki) -> None:
    data = signed(pki, dn="/C=EU/O=Test Grid/CN=Somebody Else")
    with pytest.raises(ImageListError) as err:
        parse_imagelist(data, ca_dir=pki.ca_dir, now=utcnow())
    assert str(err.value) == ("signer '/C=EU/O=Test Grid/CN=Image Endorser' is not the endorser "
                              "hv:dn '/C=EU/O=Test Grid/CN=Somebody Else'")


def test_wrong_ca_is_refused(pki: Pki) -> None:
    with pytest.raises(ImageListError, match=r"^signer issuer .* is not the endorser hv:ca"):
        parse_imagelist(signed(pki, ca="/CN=Other"), ca_dir=pki.ca_dir, now=utcnow())


def test_expired_list_is_refused(pki: Pki) -> None:
    when = stamp(timedelta(hours=-1))
    data = signed(pki, created=stamp(timedelta(days=-8)), expires=when)
    with pytest.raises(ImageListError) as err:
        parse_imagelist(data, ca_dir=pki.ca_dir, now=utcnow())
    assert str(err.value) == f"image list expired on {when}"


def test_list_from_the_future_is_refused(pki: Pki) -> None:
    when = stamp(timedelta(hours=2))
    with pytest.raises(ImageListError) as err:
        parse_imagelist(signed(pki, created=when), ca_dir=pki.ca_dir, now=utcnow())
    assert str(err.value) == f"image list created in the future ({when})"


def test_unsigned_list_refused_when_a_ca_dir_is_given(pki: Pki) -> None:
    data = imagelist(IMAGES, dn=pki.endorser_dn, ca=pki.ca_dn)
    with pytest.raises(ImageListError, match=r"^image list is not signed"):
        parse_imagelist(data, ca_dir=pki.ca_dir, now=utcnow())
    assert parse_imagelist(data, ca_dir=None, now=utcnow()).signer is None


def test_bad_checksum_field_is_refused(pki: Pki) -> None:
    data = imagelist([image_entry("img-a", "abc", "fedcloud", "A")], dn="/CN=x", ca="/CN=y")
    with pytest.raises(ImageListError) as err:
        parse_imagelist(data, ca_dir=None, now=utcnow())
    assert str(err.value) == "image img-a: sl:checksum:sha512 is not 128 hex digits"
