"""The training step's screen (``screen``) and one module per part: confirm, charts,
checkpoints, controls."""
