"""Reusable Textual widgets for ftwizard's screens."""
