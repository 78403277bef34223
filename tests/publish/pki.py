"""A test CA and an endorser certificate made with ``openssl``, and S/MIME signing of lists."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

CA_SUBJECT = "/C=CH/O=Imageaudit Test Grid/CN=Imageaudit Test CA"
ENDORSER_SUBJECT = "/C=CH/O=Imageaudit Test Grid/CN=Endorser One"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@dataclass(frozen=True)
class EndorserPKI:
    """A CA directory (hashed, as ``-CApath`` wants it) and an endorser key pair."""

    ca_dir: Path
    ca_cert: Path
    endorser_cert: Path
    endorser_key: Path
    ca_subject: str = CA_SUBJECT
    endorser_subject: str = ENDORSER_SUBJECT

    def sign(self, content: Path, out: Path) -> Path:
        """S/MIME-sign ``content`` as the endorser (clear-signed, as image lists are)."""
        _openssl(
            "smime", "-sign", "-in", str(content), "-out", str(out), "-signer",
            str(self.endorser_cert), "-inkey", str(self.endorser_key), "-text",
            cwd=out.parent,
        )
        return out


def make_pki(root: Path) -> EndorserPKI:
    """A self-signed CA and an endorser certificate it issued, valid for 30 days."""
    root.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "30", "-subj", CA_SUBJECT,
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=root,
    )
    (root / "endorser.ext").write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,nonRepudiation\n"
        "extendedKeyUsage=emailProtection\n",
        encoding="utf-8",
    )
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "endorser.key", "-out",
        "endorser.csr", "-subj", ENDORSER_SUBJECT, cwd=root,
    )
    _openssl(
        "x509", "-req", "-in", "endorser.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "endorser.pem", "-days", "30", "-extfile", "endorser.ext",
        cwd=root,
    )
    ca_dir = root / "ca-dir"
    ca_dir.mkdir(exist_ok=True)
    shutil.copy(root / "ca.pem", ca_dir / "test-ca.pem")
    _openssl("rehash", str(ca_dir), cwd=root)
    return EndorserPKI(ca_dir, root / "ca.pem", root / "endorser.pem", root / "endorser.key")
