"""Pieces of replay files that several end-to-end replays share, as YAML text.

They are inserted into each test's f-string replay, so they hold single braces.
"""

from __future__ import annotations


def label_grader_step(timeout: int = 120) -> str:
    """The grader step: an exact-label string_check, tested on samples and confirmed."""
    return f"""  - screen: grader
  - set:
      grader-spec: |
        type: string_check
        name: label match
        input: "{{{{sample.output_text}}}}"
        reference: "{{{{item.reference_answer}}}}"
        operation: eq
  - press: grader-test
  - wait: {{for: grader-tested, timeout: {timeout}}}
  - press: grader-looks-right
  - press: next
"""
