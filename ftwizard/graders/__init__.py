"""Graders: one spec (OpenAI's grader JSON plus ftwizard kinds) that runs locally and exports.

Modules: :mod:`spec` (models), :mod:`loading` (files and validation), :mod:`templates`,
:mod:`formula` (``multi`` formulas), :mod:`results` (samples, row results, summaries),
:mod:`samples` (where samples come from), :mod:`runner` (local grading), :mod:`python_pool`,
:mod:`model_graders`, :mod:`similarity`, :mod:`portable` (stdlib scoring code shared with
exports), :mod:`preview` (try a grader on a few samples), :mod:`export_openai`,
:mod:`openai_schema`, :mod:`export_vertex`, :mod:`export_trl`, :mod:`commands` (CLI).

Nothing is imported here, so importing one module stays cheap. Python graders run in
:mod:`sandbox_worker`, a standalone script that imports none of ftwizard.
"""
