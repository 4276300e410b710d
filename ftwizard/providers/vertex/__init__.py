"""Vertex AI: Gemini generation and supervised / preference tuning jobs."""
