"""The ``naer`` command: one module per command group (main.py registers them)."""

from naer.cli.main import app, main

__all__ = ["app", "main"]
