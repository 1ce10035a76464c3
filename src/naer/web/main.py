"""The application ``naer serve`` runs: the FHIR API under /fhir, the population dashboard at /, the
worklists at /risk, the pages of access (sign-in, a citizen's overview, Min log, review) and of working
together (inboxes, advice requests, the citizen's course and plan, the competence register, acute beds,
responsibility and delegation), MedCom messages, the register of initiatives, every page behind sign-in."""

from __future__ import annotations

from naer import clock
from naer.api.app import create_app
from naer.settings import get_settings
from naer.web.coordination import add_coordination_pages, add_course_pages, add_figures_pages, add_task_pages
from naer.web.dashboard import add_dashboard
from naer.web.gate import SignInGate
from naer.web.initiatives import add_initiative_pages
from naer.web.messages import add_message_pages
from naer.web.risk import add_risk_pages
from naer.web.signin import add_access_pages
from naer.web.teamwork import add_teamwork_pages

_today = get_settings().today()
if _today is not None:  # the demo's clock, in every worker process (NAER_TODAY or the data folder's today)
    clock.start_at(_today)
app = create_app(migrate=False)  # `naer serve` has applied the migrations before starting the workers
add_access_pages(app)
add_coordination_pages(app)
add_course_pages(app)
add_task_pages(app)
add_figures_pages(app)
add_teamwork_pages(app)
add_message_pages(app)
add_initiative_pages(app)
add_dashboard(app, get_settings().results_path())
add_risk_pages(app, get_settings().risk_path())
app.add_middleware(SignInGate)
