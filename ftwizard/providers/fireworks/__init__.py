"""Fireworks AI: managed fine-tuning (SFT, DPO, RFT) over its REST API, and its evaluators."""
