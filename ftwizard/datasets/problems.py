"""Problems found in a dataset: stable codes, severities and the report that carries them.

Codes are a public contract (the CLI's JSON, the dataset screen, replays): add new ones, never
rename one.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class Severity(StrEnum):
    """Errors block training; warnings are worth a look."""

    ERROR = "error"
    WARNING = "warning"


class Code(StrEnum):
    """Stable identifiers of every problem the validator reports."""

    # Reading
    INVALID_JSON = "invalid_json"
    INVALID_ROW = "invalid_row"
    # The OpenAI cookbook's format checks (same names as its notebook)
    DATA_TYPE = "data_type"
    MISSING_MESSAGES_LIST = "missing_messages_list"
    MESSAGE_MISSING_KEY = "message_missing_key"
    MESSAGE_UNRECOGNIZED_KEY = "message_unrecognized_key"
    UNRECOGNIZED_ROLE = "unrecognized_role"
    MISSING_CONTENT = "missing_content"
    EXAMPLE_MISSING_ASSISTANT_MESSAGE = "example_missing_assistant_message"
    # Beyond the cookbook
    EMPTY_MESSAGES = "empty_messages"
    MESSAGE_DATA_TYPE = "message_data_type"
    UNRECOGNIZED_KEY = "unrecognized_key"
    ROLE_NOT_ALLOWED = "role_not_allowed"
    INVALID_WEIGHT = "invalid_weight"
    INVALID_TOOLS = "invalid_tools"
    INVALID_TOOL_CALL = "invalid_tool_call"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    INVALID_PREFERENCE_OUTPUT = "invalid_preference_output"
    MISSING_PARTS = "missing_parts"
    INVALID_PART = "invalid_part"
    WRONG_FORMAT = "wrong_format"
    OVER_TOKEN_LIMIT = "over_token_limit"
    DUPLICATE_EXAMPLE = "duplicate_example"
    TOO_FEW_EXAMPLES = "too_few_examples"
    TOO_MANY_EXAMPLES = "too_many_examples"
    MISSING_VALIDATION_FILE = "missing_validation_file"
    EMPTY_FILE = "empty_file"
    UNSUPPORTED_METHOD = "unsupported_method"
    # Images
    IMAGE_NOT_IN_USER_TURN = "image_not_in_user_turn"
    TOO_MANY_IMAGES = "too_many_images"
    IMAGE_TOO_LARGE = "image_too_large"
    IMAGE_FORMAT = "image_format"
    IMAGE_MODE = "image_mode"
    INVALID_IMAGE = "invalid_image"
    IMAGE_MISSING = "image_missing"
    IMAGE_NOT_EMBEDDED = "image_not_embedded"
    IMAGE_COUNT_MISMATCH = "image_count_mismatch"
    # Warnings
    MISSING_SYSTEM_MESSAGE = "missing_system_message"
    MISSING_USER_MESSAGE = "missing_user_message"
    SHORT_ANSWER = "short_answer"
    IMBALANCED_ANSWERS = "imbalanced_answers"
    LAST_MESSAGE_NOT_USER = "last_message_not_user"
    TOKEN_ESTIMATE = "token_estimate"
    FEW_EXAMPLES = "few_examples"
    VALIDATION_OVERLAP = "validation_overlap"
    IMAGE_NOT_CHECKED = "image_not_checked"
    IMAGE_WILL_BE_EMBEDDED = "image_will_be_embedded"
    IMAGE_WILL_BE_UPLOADED = "image_will_be_uploaded"
    IMAGES_MAY_BE_DROPPED = "images_may_be_dropped"
    MODEL_NOT_VISION = "model_not_vision"
    IMAGE_TOKEN_ESTIMATE = "image_token_estimate"


class Problem(BaseModel):
    """One problem: where (1-based line, ``None`` for the whole file), what, and how to fix it.

    Warnings that concern many lines are reported once, with ``count`` lines affected and up to
    20 of them in ``lines``.
    """

    line: int | None
    code: Code
    message: str
    field: str | None = None
    """Where in the example, for problems that concern one value (e.g. an image part)."""
    severity: Severity = Severity.ERROR
    count: int = 1
    lines: list[int] = Field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        """The CLI shape: ``line``, ``code``, ``message`` (plus ``count`` when above one)."""
        out: dict[str, object] = {
            "line": self.line,
            "code": self.code.value,
            "message": self.message,
        }
        if self.field is not None:
            out["field"] = self.field
        if self.count > 1:
            out["count"] = self.count
            out["lines"] = self.lines
        return out
