"""Distinguished names spelled as OpenSSL spells them, for ``hv:dn`` and ``hv:ca``.

Sites compare an image list's ``hv:dn`` and ``hv:ca`` with the signer's certificate as plain
strings. atrope joins pyOpenSSL's ``X509Name.get_components()`` (OpenSSL's short name of each
attribute, its value as is) into ``/K=V/K=V``; vmcatcher and the endorsers themselves copy the
output of ``openssl x509 -noout -subject -nameopt compat`` (``X509_NAME_oneline``). Both use
OpenSSL's short names (``serialNumber``, ``emailAddress``, ``UID``, ``DC``, ``street``, ``GN``),
where cryptography knows only a few (it writes ``2.5.4.5=42`` for ``serialNumber=42``). So the
names are looked up in OpenSSL's own table, kept here for the attributes that appear in DNs.
Specs: OpenSSL crypto/objects/objects.txt, X509_NAME_oneline(3), openssl-namedisplay-options(1),
RFC 4514.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

# OpenSSL's short names (OBJ_nid2sn) of the attributes found in certificate names, by OID
# (dotted, so that an older cryptography without a NameOID constant for one still reads it).
_SHORT_NAMES = {
    "2.5.4.3": "CN", "2.5.4.4": "SN", "2.5.4.5": "serialNumber", "2.5.4.6": "C", "2.5.4.7": "L",
    "2.5.4.8": "ST", "2.5.4.9": "street", "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.12": "title",
    "2.5.4.13": "description", "2.5.4.15": "businessCategory", "2.5.4.16": "postalAddress",
    "2.5.4.17": "postalCode", "2.5.4.18": "postOfficeBox", "2.5.4.20": "telephoneNumber",
    "2.5.4.41": "name", "2.5.4.42": "GN", "2.5.4.43": "initials",
    "2.5.4.44": "generationQualifier", "2.5.4.45": "x500UniqueIdentifier",
    "2.5.4.46": "dnQualifier", "2.5.4.51": "houseIdentifier", "2.5.4.65": "pseudonym",
    "2.5.4.72": "role", "2.5.4.97": "organizationIdentifier",
    "0.9.2342.19200300.100.1.1": "UID", "0.9.2342.19200300.100.1.3": "mail",
    "0.9.2342.19200300.100.1.25": "DC", "1.2.840.113549.1.9.1": "emailAddress",
    "1.2.840.113549.1.9.2": "unstructuredName", "1.2.840.113549.1.9.8": "unstructuredAddress",
    "1.3.6.1.4.1.311.60.2.1.1": "jurisdictionL", "1.3.6.1.4.1.311.60.2.1.2": "jurisdictionST",
    "1.3.6.1.4.1.311.60.2.1.3": "jurisdictionC",
}
OPENSSL_SHORT_NAMES: dict[ObjectIdentifier, str] = {
    ObjectIdentifier(oid): short for oid, short in _SHORT_NAMES.items()}


def _key(attr: x509.NameAttribute[str] | x509.NameAttribute[bytes]) -> str:
    # OpenSSL writes an attribute it has no name for as its dotted OID.
    return OPENSSL_SHORT_NAMES.get(attr.oid) or attr.oid.dotted_string


def _text(attr: x509.NameAttribute[str] | x509.NameAttribute[bytes]) -> str:
    value = attr.value
    return value.hex() if isinstance(value, bytes) else value


def openssl_dn(name: x509.Name) -> str:
    """``name`` as ``/K=V/K=V``, the form written in ``hv:dn`` and ``hv:ca``.

    Every attribute gets its own ``/`` and its value as is: what atrope compares with. For names
    of single-valued RDNs in printable ASCII (grid DNs) it is exactly what
    ``openssl x509 -noout -subject -nameopt compat`` prints after ``subject=``.
    """
    return "".join(f"/{_key(attr)}={_text(attr)}" for rdn in name.rdns for attr in rdn)


def _escaped(value: str) -> str:
    # X509_NAME_oneline writes each byte outside ' '..'~' as \xHH.
    return "".join(chr(b) if 0x20 <= b <= 0x7E else f"\\x{b:02X}" for b in value.encode())


def openssl_compat_dn(name: x509.Name) -> str:
    """``name`` exactly as ``openssl x509 -subject -nameopt compat`` prints it: members of a
    multi-valued RDN joined with ``+``, bytes outside printable ASCII as ``\\xHH``."""
    return "".join(
        "/" + "+".join(f"{_key(attr)}={_escaped(_text(attr))}" for attr in rdn)
        for rdn in name.rdns)


def dn_spellings(name: x509.Name) -> frozenset[str]:
    """Every spelling of ``name`` accepted as its ``hv:dn`` (or ``hv:ca``): :func:`openssl_dn`,
    OpenSSL's ``-nameopt compat`` line, and RFC 4514 (with OpenSSL's attribute names, as
    ``-nameopt RFC2253`` prints them, or cryptography's)."""
    return frozenset((openssl_dn(name), openssl_compat_dn(name),
                      name.rfc4514_string(OPENSSL_SHORT_NAMES), name.rfc4514_string()))
