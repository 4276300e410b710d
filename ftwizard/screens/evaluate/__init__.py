"""The evaluate step: its screen (``screen``), runs (``running``) and results (``results``)."""
