"""Per-example checks for every dataset format: one checker per format, chosen here.

Each checker reports ``(code, message)`` pairs; messages say how to fix the problem.
"""

from __future__ import annotations

from typing import Any

from ftwizard.datasets.checked import Checked, json_type
from ftwizard.datasets.formats import SHAPES, DatasetFormat
from ftwizard.datasets.gemini_checks import check_gemini, check_gemini_preference
from ftwizard.datasets.openai_checks import check_chat, check_dpo, check_rft, check_trl
from ftwizard.datasets.problems import Code
from ftwizard.datasets.trl_checks import (
    check_prompt_completion,
    check_prompt_only,
    check_text,
    check_trl_dpo,
)
from ftwizard.session import Backend


def check_example(data: Any, fmt: DatasetFormat, *, backend: Backend | None = None) -> Checked:
    """Check one parsed example against ``fmt``, as ``backend`` reads it (default: OpenAI)."""
    out = Checked()
    if not isinstance(data, dict):
        out.errors.append(
            (
                Code.DATA_TYPE,
                f"example is a JSON {json_type(data)}, not an object; "
                f"write each example as one JSON object ({SHAPES[fmt]})",
            )
        )
        return out
    if fmt is DatasetFormat.RFT:
        check_rft(data, out, openai=backend in (None, Backend.openai))
    else:
        _CHECKERS[fmt](data, out)
    return out


# RFT is checked in check_example: its rules depend on the backend.
_CHECKERS = {
    DatasetFormat.CHAT: check_chat,
    DatasetFormat.TRL: check_trl,
    DatasetFormat.DPO: check_dpo,
    DatasetFormat.GEMINI: check_gemini,
    DatasetFormat.PROMPT_COMPLETION: check_prompt_completion,
    DatasetFormat.TRL_DPO: check_trl_dpo,
    DatasetFormat.GEMINI_PREFERENCE: check_gemini_preference,
    DatasetFormat.TEXT: check_text,
    DatasetFormat.PROMPT_ONLY: check_prompt_only,
}
