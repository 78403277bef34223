"""Open a catalogue database (migrating it) and serve it with uvicorn."""

from __future__ import annotations

import sys
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

from integrations.appdb import AUTH_FAILURES, AUTH_WINDOW, DEFAULT_MIN_LEVEL
from integrations.appdb.api import Settings, create_app
from integrations.appdb.catalogue import Catalogue
from integrations.appdb.db import make_engine
from integrations.appdb.export import Signer, SigningIdentity
from integrations.appdb.migrate import upgrade
from integrations.appdb.verify import known_levels


def open_catalogue(url: str, *, min_level: str = DEFAULT_MIN_LEVEL,
                   levels_files: Sequence[Path] = ()) -> Catalogue:
    """Connect, apply pending migrations, return the catalogue.

    Reports may name the shipped levels definition or one of ``levels_files``.
    """
    engine = make_engine(url)
    upgrade(engine)
    return Catalogue(engine, default_min_level=min_level, levels=known_levels(levels_files))


def default_base_url(host: str, port: int) -> str:
    """``http://HOST:PORT`` of the bind address (a wildcard address becomes 127.0.0.1)."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def check_base_url(url: str) -> str:
    """``url`` without a trailing slash when it is an absolute http(s) URL; else ValueError."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
            or parts.fragment or parts.username:
        raise ValueError(f"--base-url {url!r}: expected http(s)://HOST[:PORT][/PATH]")
    return url.rstrip("/")


def serve(url: str, *, host: str = "127.0.0.1", port: int = 8080, sign_cert: Path | None = None,
          sign_key: Path | None = None, ca_dir: Path | None = None, base_url: str | None = None,
          min_level: str = DEFAULT_MIN_LEVEL, workers_log: str = "info",
          levels_files: Sequence[Path] = (), auth_failures: int = AUTH_FAILURES,
          auth_window: float = AUTH_WINDOW, feeds: Path | None = None) -> None:
    """Run the service until interrupted.

    Image-list URLs are built from ``base_url`` (default: the bind address), never from a
    request's Host header. ``feeds`` is the feed snapshot campaigns resolve advisories with.
    """
    import uvicorn

    base = check_base_url(base_url) if base_url else default_base_url(host, port)
    if sign_cert is not None and not base_url:
        # Signed lists are for sites; the URLs in them would name this bind address.
        print(f"imageaudit catalogue: note: no --base-url: the image lists' URLs name {base}, "
              "which sites cannot reach unless that is the public address", file=sys.stderr)

    signer = None
    if sign_cert is not None or sign_key is not None:
        if sign_cert is None or sign_key is None:
            raise ValueError("--sign-cert and --sign-key go together")
        signer = Signer(SigningIdentity.load(sign_cert, sign_key))
    app = create_app(open_catalogue(url, min_level=min_level, levels_files=levels_files),
                     Settings(base_url=base, signer=signer, ca_dir=ca_dir,
                              auth_failures=auth_failures, auth_window=auth_window,
                              feeds=feeds))
    uvicorn.run(app, host=host, port=port, log_level=workers_log, server_header=False,
                proxy_headers=False)
