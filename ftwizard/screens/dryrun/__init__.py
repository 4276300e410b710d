"""The dry-run step's screen, one module per panel; the screen is in :mod:`.screen`."""
