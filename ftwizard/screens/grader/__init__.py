"""The grader step screen, one module per panel.

:mod:`screen` (the step and its layout), :mod:`editing` (style, example, forms and spec
editor), :mod:`testing` (check, test on samples, confirm), :mod:`sandbox_note` (what the python
sandbox enforces here), :mod:`specs` (what the forms generate).
"""
