"""The application ``naer serve`` runs: the FHIR API under /fhir and the population dashboard at /."""

from __future__ import annotations

from naer.api.app import create_app
from naer.settings import get_settings
from naer.web.dashboard import add_dashboard
from naer.web.risk import add_risk_pages

app = create_app(migrate=False)  # `naer serve` has applied the migrations before starting the workers
add_dashboard(app, get_settings().results_path())
add_risk_pages(app, get_settings().risk_path())
