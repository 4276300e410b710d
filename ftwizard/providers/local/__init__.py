"""The local backend: transformers generation, the detached training worker, export and serving."""
