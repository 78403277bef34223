"""Building the command line imports only what parsing arguments needs.

``imageaudit --help``, and ``facts``/``scan`` up to opening the image, must not pay for the
catalogue service, its database layer, the publisher or the feed readers: each command imports
those when it runs. Checked in a fresh interpreter, since this process has imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json, sys
from imageaudit.cli.main import build_parser
parser = build_parser()
parser.parse_args(["facts", "image.qcow2"])
parser.parse_args(["scan", "image.qcow2", "--format", "json", "-o", "report.json"])
print(json.dumps(sorted(sys.modules)))
"""

# Kept out of the parser today.
KEPT_OUT = (
    "fastapi",
    "starlette",
    "uvicorn",
    "alembic",
    "integrations.appdb.api",
    "integrations.appdb.catalogue",
    "integrations.appdb.server",
    "integrations.appdb.db",
    "integrations.appdb.imagelist",
    "imageaudit.vulns.feeds_debian",
    "imageaudit.vulns.feeds_rpm",
    "imageaudit.vulns.feeds_apk",
    "cyclonedx",
    "imageaudit.report.sbom",
)
# Still brought in by names the help texts show: TOKEN_ENV (imageaudit.publish) and KEY_ENV
# (imageaudit.signing, which imports cryptography and imageaudit.store, hence SQLAlchemy).
STILL_IMPORTED = (
    "sqlalchemy",
    "cryptography",
    "imageaudit.publish",
    "imageaudit.store",
)


@pytest.fixture(scope="module")
def parser_modules() -> set[str]:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          timeout=120, check=True)
    return set(json.loads(done.stdout))


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return [name for name in names if name in modules]


def test_building_the_parser_keeps_heavy_modules_out(parser_modules: set[str]) -> None:
    assert "imageaudit.cli.main" in parser_modules
    assert _loaded(parser_modules, KEPT_OUT) == []


@pytest.mark.xfail(strict=True, reason="the help texts' TOKEN_ENV and KEY_ENV live in modules "
                   "that import the publisher and the store")
def test_building_the_parser_keeps_the_publisher_out(parser_modules: set[str]) -> None:
    assert _loaded(parser_modules, STILL_IMPORTED) == []
