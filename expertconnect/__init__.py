"""ExpertConnect: the backend of an expert-consultation marketplace.

The version is spelled here and nowhere else: pyproject.toml, `expertconnect --version`, the
start-up banner and the OpenAPI document's info.version all read it."""

__version__ = "0.2.0"
