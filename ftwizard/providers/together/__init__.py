"""Together AI: managed fine-tuning (SFT, DPO) of open models, and their chat completions."""
