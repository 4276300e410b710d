"""The relabeling journal: every teacher answer and every submitted batch, written as it happens.

The journal itself is shared with the dry run's batch mode and lives in
:mod:`ftwizard.providers.batch_journal`; distillation keys its entries by :func:`request_id` of the
teacher request (``ftwizard/distill/prompts.py``), so changing the teacher or its prompt never
reuses a stale answer. This module keeps the names distillation code and tests import.
"""

from __future__ import annotations

from ftwizard.providers.batch_journal import (
    BatchDoneEntry,
    BatchEntry,
    GenerationEntry,
    Journal,
    JournalEntry,
    JournalState,
)

__all__ = [
    "BatchDoneEntry",
    "BatchEntry",
    "GenerationEntry",
    "Journal",
    "JournalEntry",
    "JournalState",
]
