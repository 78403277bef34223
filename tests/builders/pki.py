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
class Pki:
    """A CA (hashed directory ``ca_dir``, as ``-CApath`` wants it), the endorser's and the
    catalogue's certificates it issued, and the hashed directory of a CA that issued neither."""

    ca_dir: Path
    ca_dn: str
    endorser_cert: Path
    endorser_key: Path
    endorser_dn: str
    catalogue_cert: Path
    catalogue_key: Path
    other_ca_dir: Path

    def sign(self, content: bytes, *, text: bool = False) -> bytes:
        """``content`` clear-signed by the endorser (``openssl smime -sign``); with ``text`` a
        ``Content-Type: text/plain`` header is signed with it (``-text``), as some endorsers do."""
        return openssl("smime", "-sign", "-signer", str(self.endorser_cert), "-inkey",
                       str(self.endorser_key), *(("-text",) if text else ()), stdin=content)


def make_pki(root: Path) -> Pki:
    """Make the CAs, keys and certificates under ``root``, valid for 30 days."""
    ca_dir, other_ca_dir = root / "ca", root / "other-ca"
    ca_dir.mkdir(parents=True)
    other_ca_dir.mkdir()

    def make_ca(directory: Path, dn: str) -> tuple[Path, Path]:
        # The key stays outside the directory the verifiers are given.
        key, crt = root / f"{directory.name}.key", directory / "ca.pem"
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                str(crt), "-days", "30", "-subj", dn,
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        openssl("rehash", str(directory))
        return crt, key

    ca_crt, ca_key = make_ca(ca_dir, CA_DN)
    make_ca(other_ca_dir, OTHER_CA_DN)
    (root / "leaf.ext").write_text(LEAF_EXTENSIONS, encoding="utf-8")

    def leaf(name: str, dn: str) -> tuple[Path, Path]:
        key, csr, crt = root / f"{name}.key", root / f"{name}.csr", root / f"{name}.pem"
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
                "-subj", dn)
        openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
                "-CAserial", str(root / "ca.srl"), "-CAcreateserial", "-out", str(crt),
                "-days", "30", "-extfile", str(root / "leaf.ext"))
        return crt, key

    endorser_cert, endorser_key = leaf("endorser", ENDORSER_DN)
    catalogue_cert, catalogue_key = leaf("catalogue", CATALOGUE_DN)
    return Pki(ca_dir, CA_DN, endorser_cert, endorser_key, ENDORSER_DN, catalogue_cert,
               catalogue_key, other_ca_dir)
