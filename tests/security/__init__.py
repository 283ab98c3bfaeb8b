"""Security tests, endpoint by endpoint, against the running server (see helpers.py)."""
