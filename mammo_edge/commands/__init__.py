"""One module per ``mammo-edge`` verb; each holds a typer command function."""
