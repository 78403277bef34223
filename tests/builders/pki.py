"""A test PKI made with ``openssl``: a CA, the endorser and catalogue certificates it issued, an
unrelated CA, and S/MIME signing as endorsers sign their image lists.

Used by the catalogue tests (image lists verified against the CA, exports signed as the
catalogue) and by the publisher's end-to-end test (a signed list imported into a real server).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

CA_DN = "/C=EU/O=Test Grid/CN=Test Grid CA"
OTHER_CA_DN = "/C=EU/O=Test Grid/CN=Other CA"
ENDORSER_DN = "/C=EU/O=Test Grid/CN=Image Endorser"
CATALOGUE_DN = "/C=EU/O=Test Grid/CN=Catalogue Service"
# What an S/MIME signer's certificate carries (openssl smime -verify checks the purpose).
LEAF_EXTENSIONS = (
    "basicConstraints=CA:FALSE\n"
    "keyUsage=critical,digitalSignature,nonRepudiation\n"
    "extendedKeyUsage=emailProtection\n"
)


def openssl(*args: str, stdin: bytes | None = None) -> bytes:
    """Run ``openssl`` with ``args``; its stdout (a failure shows openssl's stderr)."""
    proc = subprocess.run(["openssl", *args], input=stdin, capture_output=True, check=False,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


@dataclass(frozen=True)
class Leaf:
    """A certificate the test CA issued and its key."""

    cert: Path
    key: Path

    def sign(self, content: bytes, *, text: bool = False) -> bytes:
        """``content`` clear-signed with this certificate (``openssl smime -sign``); with
        ``text`` a ``Content-Type: text/plain`` header is signed with it (``-text``), as some
        endorsers do."""
        return openssl("smime", "-sign", "-signer", str(self.cert), "-inkey", str(self.key),
                       *(("-text",) if text else ()), stdin=content)


@dataclass(frozen=True)
class Pki:
    """A CA (hashed directory ``ca_dir``, as ``-CApath`` wants it), the endorser's and the
    catalogue's certificates it issued, and the hashed directory of a CA that issued neither.
    :meth:`issue` makes more certificates of that CA."""

    ca_dir: Path
    ca_dn: str
    endorser_cert: Path
    endorser_key: Path
    endorser_dn: str
    catalogue_cert: Path
    catalogue_key: Path
    other_ca_dir: Path
    root: Path

    def sign(self, content: bytes, *, text: bool = False) -> bytes:
        """``content`` clear-signed by the endorser (see :meth:`Leaf.sign`)."""
        return Leaf(self.endorser_cert, self.endorser_key).sign(content, text=text)

    def issue(self, name: str, dn: str, *, multivalue: bool = False) -> Leaf:
        """An S/MIME signing certificate for ``dn`` (``openssl req -subj`` syntax, UTF-8;
        ``multivalue``: ``+`` joins the members of one RDN) issued by the CA, valid 30 days."""
        return _issue(self.root, self.ca_dir, name, dn, multivalue=multivalue)


def _issue(root: Path, ca_dir: Path, name: str, dn: str, *, multivalue: bool = False) -> Leaf:
    key, csr, crt = root / f"{name}.key", root / f"{name}.csr", root / f"{name}.pem"
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
            "-utf8", *(("-multivalue-rdn",) if multivalue else ()), "-subj", dn)
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_dir / "ca.pem"), "-CAkey",
            str(root / f"{ca_dir.name}.key"), "-CAserial", str(root / "ca.srl"),
            "-CAcreateserial", "-out", str(crt), "-days", "30", "-extfile",
            str(root / "leaf.ext"))
    return Leaf(crt, key)


def make_pki(root: Path) -> Pki:
    """Make the CAs, keys and certificates under ``root``, valid for 30 days."""
    ca_dir, other_ca_dir = root / "ca", root / "other-ca"
    ca_dir.mkdir(parents=True)
    other_ca_dir.mkdir()

    def make_ca(directory: Path, dn: str) -> None:
        # The key stays outside the directory the verifiers are given.
        key, crt = root / f"{directory.name}.key", directory / "ca.pem"
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                str(crt), "-days", "30", "-subj", dn,
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        openssl("rehash", str(directory))

    make_ca(ca_dir, CA_DN)
    make_ca(other_ca_dir, OTHER_CA_DN)
    (root / "leaf.ext").write_text(LEAF_EXTENSIONS, encoding="utf-8")
    endorser = _issue(root, ca_dir, "endorser", ENDORSER_DN)
    catalogue = _issue(root, ca_dir, "catalogue", CATALOGUE_DN)
    return Pki(ca_dir, CA_DN, endorser.cert, endorser.key, ENDORSER_DN, catalogue.cert,
               catalogue.key, other_ca_dir, root)
