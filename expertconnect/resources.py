"""The files the program ships with besides its code: the migrations, the OpenAPI document and
the AsyncAPI document. A checkout keeps them at the top of the repository (sql/migrations/,
docs/), where a DBA and a reader find them; a built wheel or the single-file program carries
copies under expertconnect/_bundled/ (see [tool.hatch.build] in pyproject.toml), so an
installed program needs no checkout. (The web client's files live in the package itself:
expertconnect/static/.)"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
_BUNDLED = PACKAGE_DIR / "_bundled"
_CHECKOUT = PACKAGE_DIR.parent


def _shipped(relative: str) -> Path:
    bundled = _BUNDLED / relative
    return bundled if bundled.exists() else _CHECKOUT / relative


MIGRATIONS_DIR = _shipped("sql/migrations")
OPENAPI_PATH = _shipped("docs/openapi.yaml")
ASYNCAPI_PATH = _shipped("docs/asyncapi.yaml")
