"""DNs are written as OpenSSL writes them, and a list signed by a certificate with attributes
cryptography has no short name for (serialNumber, emailAddress, street, ...) is accepted when
its ``hv:dn`` is what OpenSSL prints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier

from integrations.appdb.db import utcnow
from integrations.appdb.dn import dn_spellings, openssl_compat_dn, openssl_dn
from integrations.appdb.export import SigningIdentity
from integrations.appdb.imagelist import ImageListError, parse_imagelist
from tests.appdb.helpers import image_entry, imagelist, sha512_of
from tests.builders.pki import Leaf, Pki, openssl

# Every attribute of OpenSSL's table that `openssl req -subj` takes as text.
WIDE_DN = ("/DC=org/DC=example/C=ES/ST=Cantabria/L=Santander/street=Av. de los Castros"
           "/postalCode=39005/postOfficeBox=12/O=IFCA/OU=Grid/title=Dr/description=d"
           "/businessCategory=Research/telephoneNumber=341/name=n/GN=Jo/SN=Doe/initials=JD"
           "/generationQualifier=Jr/dnQualifier=q/pseudonym=p/role=admin"
           "/organizationIdentifier=VATES-1/houseIdentifier=7/serialNumber=42/UID=jdoe"
           "/mail=m@example.org/emailAddress=a@example.org/unstructuredName=u"
           "/unstructuredAddress=ua/jurisdictionC=ES/jurisdictionST=C/jurisdictionL=S"
           "/CN=host.example.org")
SERIAL_DN = "/DC=eu/DC=egi/C=EU/O=Test Grid/serialNumber=42/CN=Image Endorser"


def subject(leaf: Leaf, nameopt: str) -> str:
    out = openssl("x509", "-in", str(leaf.cert), "-noout", "-subject", "-nameopt", nameopt)
    return out.decode().strip().removeprefix("subject=")


def name_of(leaf: Leaf) -> x509.Name:
    return x509.load_pem_x509_certificate(leaf.cert.read_bytes()).subject


def test_every_attribute_is_named_as_openssl_names_it(pki: Pki) -> None:
    leaf = pki.issue("wide", WIDE_DN)
    assert openssl_dn(name_of(leaf)) == subject(leaf, "compat") == WIDE_DN
    assert name_of(leaf).rfc4514_string() != subject(leaf, "RFC2253")  # cryptography's own
    assert subject(leaf, "RFC2253") in dn_spellings(name_of(leaf))


def test_serial_number_dn_is_written_as_openssl_prints_it(pki: Pki) -> None:
    leaf = pki.issue("serial", SERIAL_DN)
    identity = SigningIdentity.load(leaf.cert, leaf.key)
    assert identity.dn == subject(leaf, "compat") == SERIAL_DN
    assert identity.ca == pki.ca_dn


def test_compat_spelling_of_multivalued_and_non_ascii_names(pki: Pki) -> None:
    leaf = pki.issue("utf8", "/C=ES/O=Universidad de Cantabria/CN=José Pérez+UID=jp",
                     multivalue=True)
    name = name_of(leaf)
    assert openssl_compat_dn(name) == subject(leaf, "compat") == (
        "/C=ES/O=Universidad de Cantabria/UID=jp+CN=Jos\\xC3\\xA9 P\\xC3\\xA9rez")
    # atrope joins every attribute with '/' and keeps the value as is
    assert openssl_dn(name) == "/C=ES/O=Universidad de Cantabria/UID=jp/CN=José Pérez"
    assert {openssl_dn(name), openssl_compat_dn(name)} <= dn_spellings(name)


@pytest.mark.parametrize("nameopt", ["compat", "RFC2253"])
def test_list_signed_by_a_serial_number_dn_is_imported(pki: Pki, nameopt: str) -> None:
    leaf = pki.issue("serial-endorser", SERIAL_DN)
    dn = subject(leaf, nameopt)
    data = leaf.sign(imagelist([image_entry("img-s", sha512_of("s"), "fedcloud", "S")],
                               dn=dn, ca=pki.ca_dn))
    il = parse_imagelist(data, ca_dir=pki.ca_dir, now=utcnow())
    assert il.signer is not None
    assert (il.endorser_dn, il.signer.subject) == (dn, SERIAL_DN)


def test_list_naming_serial_number_by_its_oid_is_refused(pki: Pki) -> None:
    leaf = pki.issue("serial-oid", SERIAL_DN)
    dn = SERIAL_DN.replace("serialNumber", "2.5.4.5")
    data = leaf.sign(imagelist([image_entry("img-s", sha512_of("s"), "fedcloud", "S")],
                               dn=dn, ca=pki.ca_dn))
    with pytest.raises(ImageListError) as err:
        parse_imagelist(data, ca_dir=pki.ca_dir, now=utcnow())
    assert str(err.value) == f"signer {SERIAL_DN!r} is not the endorser hv:dn {dn!r}"


def test_unknown_attribute_is_written_as_its_oid(tmp_path: Path) -> None:
    # `openssl req` drops attributes it has no name for: the certificate is made here.
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Grid"),
                      x509.NameAttribute(ObjectIdentifier("1.3.6.1.4.1.99999.1"), "private"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256()))
    pem = tmp_path / "private-oid.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    assert openssl_dn(name) == subject(Leaf(pem, pem), "compat") == (
        "/O=Test Grid/1.3.6.1.4.1.99999.1=private/CN=x")
