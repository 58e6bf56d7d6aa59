"""Exercise checkers, one module per notebook (`nbNN.py`), registered with `helpers.checks.exercise`."""
