"""The `lookalike` commands, one module per group; `cli.py` assembles them into the typer app."""
