"""`python -m jobyard` is the `jobyard` command."""

from jobyard.cli.main import app

app(prog_name="jobyard")
