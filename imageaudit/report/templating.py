"""The Jinja2 environment every HTML page of imageaudit is rendered with.

Autoescaping is on and undefined names are errors: every value on these pages may come from a
hostile image or catalogue, and a template that names a missing field must fail in the tests
rather than print nothing.
"""

from __future__ import annotations

from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined


@cache
def environment(package: str) -> Environment:
    """The environment for the ``templates/`` folder of ``package`` (``imageaudit.report``)."""
    return Environment(
        loader=PackageLoader(package, "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
