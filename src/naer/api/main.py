"""The application object uvicorn imports (``naer serve``): the API over the store the settings name."""

from __future__ import annotations

from naer.api.app import create_app

app = create_app(migrate=False)  # `naer serve` has applied the migrations before starting the workers
