"""``imageaudit image-list``: a HEPiX image list for image files the endorser has at hand.

Each image is listed with its real SHA-512 and size, its format read from its header and its
operating system read from its ``/etc/os-release`` (offline, read-only, like a scan). With
``--sign-cert`` and ``--sign-key`` the list is S/MIME-signed (``openssl smime -sign``, what
atrope, vmcatcher and ``catalogue import-imagelist --verify-with`` verify) and its endorser is
the certificate's subject and issuer, spelled as OpenSSL prints them.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from imageaudit.errors import EXIT_OK, UsageError
from imageaudit.helptext import add_command

# hv:format values sites' tools understand, by what the header reader calls the format.
_FORMATS = {"qcow2": "qcow2", "raw": "raw", "vmdk": "vmdk", "vdi": "vdi", "vhdx": "vhdx",
            "vpc": "vhd", "ova": "ova"}


@dataclass(frozen=True)
class ImageOS:
    """What the image says it runs; empty strings when it does not say."""

    name: str = ""
    version: str = ""


def parse_os_release(text: str) -> ImageOS:
    """``NAME`` (or ``ID``) and ``VERSION_ID`` of an os-release file (os-release(5)), read
    with the facts' own os-release parser."""
    from imageaudit.facts.os_sources import parse_assignments

    values = {key: value for _, key, value, _, _ in parse_assignments(text) if key}
    name = values.get("NAME") or values.get("ID", "")
    # "Debian GNU/Linux" is what os-release says; image lists (and AppDB) say "Debian".
    name = name.removesuffix(" GNU/Linux")
    return ImageOS(name=name[:64], version=values.get("VERSION_ID", "")[:32])


def read_image_os(spec: str) -> ImageOS:
    """The image's os-release, read through the same read-only openers as a scan."""
    from imageaudit.facts.os import OS_RELEASE
    from imageaudit.imagefs import ImageFSError
    from imageaudit.openers import open_image

    fs = open_image(spec)
    try:
        for path in OS_RELEASE:
            try:
                return parse_os_release(fs.read_text(path, 64 * 1024))
            except ImageFSError:
                continue
        return ImageOS()
    finally:
        fs.close()


def image_format(path: Path) -> str:
    """The ``hv:format`` of the image file, from its header alone."""
    from imageaudit.openers.detect import detect_input
    from imageaudit.openers.formatcheck import sniff

    kind = detect_input(str(path))
    if kind == "ova":
        return "ova"
    if kind != "vm":
        raise UsageError(f"{path}: not a VM disk or OVA (it reads as {kind}); image lists "
                         "list VM images")
    fmt = sniff(path).format
    return _FORMATS.get(fmt, fmt)


def _version(path: Path) -> str:
    """A version that changes when the file is rebuilt: its modification time, UTC."""
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y%m%d.%H%M%S")


def build(args: argparse.Namespace) -> bytes:
    """The list's bytes: JSON, or S/MIME around the JSON when a certificate is given."""
    from integrations.appdb.export import Signer, SigningIdentity
    from integrations.appdb.imagelist_write import Endorser, image_entry, image_list

    base = args.base_url.rstrip("/")
    if not re.match(r"^https?://[^/\s]+", base):
        raise UsageError(f"--base-url {args.base_url}: an http(s) URL, where sites download "
                         "the images")
    identity = None
    if bool(args.sign_cert) != bool(args.sign_key):
        raise UsageError("--sign-cert and --sign-key go together")
    if not args.sign_cert and not (args.endorser_dn and args.endorser_ca):
        raise UsageError("an unsigned list needs --endorser-dn and --endorser-ca (catalogues "
                         "refuse a list without its endorser); or sign it with --sign-cert and "
                         "--sign-key")
    if args.sign_cert:
        try:
            identity = SigningIdentity.load(Path(args.sign_cert), Path(args.sign_key))
        except (OSError, ValueError) as exc:
            raise UsageError(f"--sign-cert {args.sign_cert}: {exc}") from exc
    # Every input is checked (a file, a VM disk or OVA, a distinct identifier) before any is
    # opened or hashed: a bad last argument costs nothing.
    checked: list[tuple[Path, str, str]] = []
    seen: dict[str, str] = {}
    for spec in args.image:
        path = Path(spec)
        if not path.is_file():
            raise UsageError(f"{spec}: no such image file")
        ident = f"{args.id_prefix}{path.stem}"
        if ident in seen:
            raise UsageError(f"{spec} and {seen[ident]} would both be listed as {ident}")
        seen[ident] = spec
        checked.append((path, ident, image_format(path)))
    entries: list[dict[str, Any]] = []
    for path, ident, fmt in checked:
        found = ImageOS(args.os_name or "", args.os_version or "")
        if not (found.name and found.version):
            read = read_image_os(str(path))
            found = ImageOS(found.name or read.name, found.version or read.version)
        entries.append(image_entry(
            ident, path, title=path.stem, description=f"{path.name} ({found.name} "
            f"{found.version})".replace(" ()", ""), fmt=fmt, vo=args.vo,
            uri=f"{base}/{path.name}", version=_version(path), arch=args.arch,
            osname=found.name, osversion=found.version))
    dn, ca = ((identity.dn, identity.ca) if identity is not None
              else (args.endorser_dn, args.endorser_ca))
    endorser = Endorser(dn=dn, ca=ca, creator=args.creator, email=args.email)
    list_uri = args.list_uri or f"{base}/{Path(args.output).name}"
    doc = image_list(
        entries, identifier=str(uuid.uuid5(uuid.NAMESPACE_URL, list_uri)), title=args.title,
        description=args.description or f"images of {args.vo}", endorser=endorser,
        source=base, uri=list_uri, valid=timedelta(days=args.valid_days),
        version=datetime.now(UTC).strftime("%Y%m%d.%H%M%S"))
    body = (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    if identity is None:
        return body
    return Signer(identity).sign(body)


def cmd_image_list(args: argparse.Namespace) -> int:
    data = build(args)
    out = Path(args.output)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(out)
    count = len(args.image)
    signed = "signed" if args.sign_cert else "unsigned"
    print(f"imageaudit: wrote {out}: {count} image{'s' if count != 1 else ''}, {signed}",
          file=sys.stderr)
    return EXIT_OK


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of days: {text!r}") from None
    if not 1 <= value <= 3650:
        raise argparse.ArgumentTypeError(f"between 1 and 3650 days, not {text}")
    return value


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub, "image-list",
        "write a HEPiX image list for local VM images (signed with a certificate and key)",
        exit_codes={0: "written", 1: "internal failure",
                    2: "usage error (an image that is not a VM disk, a bad certificate)"},
        examples=[
            "imageaudit image-list out/example-weak.qcow2 out/example-clean.qcow2 "
            "--vo demo.example.org --base-url http://127.0.0.1:8000 --endorser-dn /CN=me "
            "--endorser-ca /CN=my-ca -o out/my.image.list",
            "imageaudit image-list disk.qcow2 --vo my.vo --base-url https://images.example.org "
            "--sign-cert endorser.pem --sign-key endorser.key -o signed.image.list"])
    p.add_argument("image", nargs="+", help="VM disk or OVA files to list")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the list to write")
    p.add_argument("--vo", required=True, help="VO the images are endorsed for (ad:vo)")
    p.add_argument("--base-url", required=True, metavar="URL",
                   help="where sites download the images: each image's hv:uri is URL/NAME")
    p.add_argument("--list-uri", metavar="URL",
                   help="where the list itself is published (default: URL/FILE's name)")
    p.add_argument("--id-prefix", default="",
                   help="prefix of each image's dc:identifier, which is PREFIX + the file's "
                        "name without its extension")
    p.add_argument("--title", default="image list", help="the list's dc:title")
    p.add_argument("--description", help="the list's dc:description (default: images of VO)")
    p.add_argument("--sign-cert", metavar="PEM",
                   help="sign the list (S/MIME) with this certificate; the endorser DN and CA "
                        "are its subject and issuer")
    p.add_argument("--sign-key", metavar="PEM", help="the key of --sign-cert")
    p.add_argument("--endorser-dn", default="",
                   help="endorser DN of an unsigned list (hv:dn; required without --sign-cert)")
    p.add_argument("--endorser-ca", default="",
                   help="endorser CA of an unsigned list (hv:ca; required without --sign-cert)")
    p.add_argument("--creator", default="imageaudit", help="endorser's name (dc:creator)")
    p.add_argument("--email", default="", help="endorser's e-mail (hv:email)")
    p.add_argument("--os-name", help="sl:osname (default: NAME from the image's os-release)")
    p.add_argument("--os-version",
                   help="sl:osversion (default: VERSION_ID from the image's os-release)")
    p.add_argument("--arch", default="x86_64", help="sl:arch (default: %(default)s)")
    p.add_argument("--valid-days", type=_days, default=30,
                   help="days until the list expires (default: %(default)s)")
    p.set_defaults(func=cmd_image_list)
