"""The dataset step's screen (``screen``) and one module per tab."""
