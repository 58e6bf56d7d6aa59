"""Exercise checkers, one module per notebook (`nbNN.py`): `check("NN.name", ...)` calls `nbNN.name`."""
