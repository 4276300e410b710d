"""Anthropic: chat generation and Message Batches."""
