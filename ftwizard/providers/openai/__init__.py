"""OpenAI: chat generation, the Batch API, graders and fine-tuning jobs."""
