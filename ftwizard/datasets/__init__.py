"""Training data: load, validate, count, convert, split, transform and find topics.

Modules (import what you need; this package imports nothing at start-up):

- ``loading``: ``iter_records(path)`` streams examples with their 1-based line numbers.
- ``formats``: the formats and their detection; ``checks``: the checks every example passes.
- ``problems``: ``Problem`` and the stable problem ``Code`` values.
- ``validation``: ``validate_file(path, ...)`` -> ``ValidationReport``.
- ``targets`` and ``tokens``: per-model rules and cookbook-style token counting.
- ``stats``: token distribution, auto epochs, billed tokens.
- ``conversion``, ``splitting``, ``transforms``, ``topics``; ``writing`` (JSONL, CSV, Parquet).
- ``preview``: ``PagedReader`` for paged previews of big files.
- ``commands``: the ``validate``, ``convert``, ``split``, ``transform`` and ``topics`` commands.
"""
