"""``python -m ftwizard``."""

from ftwizard.cli import run

run()
