"""The dry run: the base model on sampled rows, graded, with health metrics and a verdict.

The verdict is GO, WARNING or NO-GO (see docs/dryrun.md).
"""
