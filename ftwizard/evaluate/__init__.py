"""The evaluate step: grader comparison and blind pairwise A/B with several judges."""
