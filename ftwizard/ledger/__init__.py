"""The run ledger: one line per finished training run, across sessions."""
