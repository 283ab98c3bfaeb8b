"""Security tests, endpoint by endpoint, against the running server (see probes.py; what every
test shares is in ../helpers.py)."""
