"""Distillation: relabel rows with a teacher and keep only the answers the grader accepts."""
