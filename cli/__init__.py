"""The ``nightclerk`` command line: one typer app, a module per command group."""
