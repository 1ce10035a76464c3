"""The FHIR API with access control off, for bench/api_bench.py only: the figure access control is
measured against. ``naer serve`` (what users run) always has access on; this module is never installed."""

from naer.api.app import create_app

app = create_app(migrate=False, access=False)
