"""The web face: the population dashboard (server-rendered pages, HTMX, vendored Vega-Lite)."""
