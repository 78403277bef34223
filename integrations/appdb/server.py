"""Open a catalogue database (migrating it) and serve it with uvicorn."""

from __future__ import annotations

import os
from pathlib import Path

from integrations.appdb import DEFAULT_MIN_LEVEL
from integrations.appdb.api import Settings, create_app
from integrations.appdb.catalogue import Catalogue
from integrations.appdb.db import make_engine
from integrations.appdb.export import Signer, SigningIdentity
from integrations.appdb.migrate import upgrade

DB_ENV = "IMAGEAUDIT_CATALOGUE_DB"
DEFAULT_DB = "sqlite:///catalogue.db"


def default_db() -> str:
    """The database URL from ``$IMAGEAUDIT_CATALOGUE_DB``, else ``sqlite:///catalogue.db``."""
    return os.environ.get(DB_ENV) or DEFAULT_DB


def open_catalogue(url: str, *, min_level: str = DEFAULT_MIN_LEVEL) -> Catalogue:
    """Connect, apply pending migrations, return the catalogue."""
    engine = make_engine(url)
    upgrade(engine)
    return Catalogue(engine, default_min_level=min_level)


def serve(url: str, *, host: str = "127.0.0.1", port: int = 8080, sign_cert: Path | None = None,
          sign_key: Path | None = None, ca_dir: Path | None = None, base_url: str | None = None,
          min_level: str = DEFAULT_MIN_LEVEL, workers_log: str = "info") -> None:
    """Run the service until interrupted."""
    import uvicorn

    signer = None
    if sign_cert is not None or sign_key is not None:
        if sign_cert is None or sign_key is None:
            raise ValueError("--sign-cert and --sign-key go together")
        signer = Signer(SigningIdentity.load(sign_cert, sign_key))
    app = create_app(open_catalogue(url, min_level=min_level),
                     Settings(base_url=base_url, signer=signer, ca_dir=ca_dir))
    uvicorn.run(app, host=host, port=port, log_level=workers_log, server_header=False,
                proxy_headers=False)
