"""CycloneDX SBOM of an image's package inventory, each package with its package URL (purl).

One component per installed package (dpkg, rpm, apk) whose files are on disk, plus one
``operating-system`` component for the release; the image itself is the BOM's
``metadata.component`` (with its SHA-512 when known). purls follow the purl specification
and the shape trivy writes: ``pkg:deb/debian/login@4.13-1?arch=amd64&distro=debian-12&epoch=1``
(the version without epoch, the epoch as a qualifier; the component ``version`` keeps the
manager's full ``[epoch:]version[-release]``). Built with ``cyclonedx-python-lib`` and
``packageurl-python``.

Specs: CycloneDX 1.6 JSON; package-url specification (types ``deb``, ``rpm``, ``apk``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6

from imageaudit import __version__
from imageaudit.facts.os import os_value
from imageaudit.facts.packages.model import InstalledPackage
from imageaudit.report import SBOM_FORMATS
from imageaudit.report.purl import purl_for

FORMATS = SBOM_FORMATS



def _component(pkg: InstalledPackage, os_facts: Any, ref: str) -> Component:
    props = [Property(name="imageaudit:package:manager", value=pkg.manager)]
    if pkg.source_name:
        props.append(Property(name="imageaudit:package:source_name", value=pkg.source_name))
    if pkg.source_version:
        props.append(Property(name="imageaudit:package:source_version", value=pkg.source_version))
    props.append(Property(name="imageaudit:package:database", value=pkg.source.path))
    return Component(
        name=pkg.name,
        version=pkg.full_version,
        type=ComponentType.LIBRARY,
        purl=purl_for(pkg, os_facts),
        bom_ref=ref,
        properties=props,
    )


def build_sbom(
    packages: Iterable[InstalledPackage],
    os_facts: Any = None,
    *,
    image_name: str = "image",
    image_kind: str = "vm",
    sha512: str | None = None,
) -> Bom:
    """A CycloneDX BOM of the packages whose files are installed (one component each)."""
    root = Component(
        name=image_name,
        type=ComponentType.CONTAINER if image_kind == "container" else ComponentType.PLATFORM,
        bom_ref="image",
        hashes=[HashType(alg=HashAlgorithm.SHA_512, content=sha512)] if sha512 else None,
        properties=[Property(name="imageaudit:image:kind", value=image_kind)],
    )
    bom = Bom()
    bom.metadata.component = root
    bom.metadata.properties.add(Property(name="imageaudit:version", value=__version__))
    children: list[Component] = []
    ident, version_id = os_value(os_facts, "id"), os_value(os_facts, "version_id")
    if ident:
        os_ref = f"os:{ident}-{version_id or 'unknown'}"
        children.append(
            Component(name=ident, version=version_id, type=ComponentType.OPERATING_SYSTEM,
                      bom_ref=os_ref)
        )
    seen: dict[str, int] = {}
    for pkg in packages:
        if not pkg.present:
            continue
        ref = purl_for(pkg, os_facts).to_string()
        # A database may list one package twice; bom-refs must stay unique.
        seen[ref] = seen.get(ref, 0) + 1
        children.append(_component(pkg, os_facts, ref if seen[ref] == 1 else f"{ref}#{seen[ref]}"))
    for child in children:
        bom.components.add(child)
    bom.register_dependency(root, children)
    return bom


def render_sbom(bom: Bom, fmt: str = "cyclonedx-json") -> str:
    """The BOM serialised in ``fmt`` (only ``cyclonedx-json``, CycloneDX 1.6)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown SBOM format {fmt!r} (known: {', '.join(FORMATS)})")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return JsonV1Dot6(bom).output_as_string(indent=2)


def sbom_of_facts(facts: Any, *, sha512: str | None = None, fmt: str = "cyclonedx-json") -> str:
    """The SBOM text of collected ``Facts`` (ValueError when no package database was read)."""
    if facts.packages is None:
        raise ValueError("the package inventory could not be collected")
    bom = build_sbom(
        facts.packages.packages,
        facts.os,
        image_name=facts.image.source,
        image_kind=facts.image.kind,
        sha512=sha512,
    )
    return render_sbom(bom, fmt)
