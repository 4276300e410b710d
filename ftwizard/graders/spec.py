"""The grader spec: OpenAI's grader JSON plus ftwizard's own kinds, as pydantic models.

OpenAI kinds keep OpenAI's field names so a spec round-trips to and from OpenAI unchanged.
ftwizard kinds (``ranking``, ``numeric``, ``regex``, ``json_match``, ``json_schema``) follow the
same shape: ``type``, ``name``, ``input`` template, and the fields of the rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from ftwizard.graders.formula import FormulaError, parse_formula

OPENAI_KINDS = ("string_check", "text_similarity", "score_model", "label_model", "python", "multi")
FTWIZARD_KINDS = ("ranking", "numeric", "regex", "json_match", "json_schema")
KINDS = OPENAI_KINDS + FTWIZARD_KINDS
MODEL_KINDS = ("score_model", "label_model")
SIMILARITY_METRICS = (
    "fuzzy_match", "bleu", "gleu", "meteor", "cosine",
    "rouge_1", "rouge_2", "rouge_3", "rouge_4", "rouge_5", "rouge_l",
)  # fmt: skip


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Grader(_Spec):
    name: str = Field(min_length=1)


class StringCheckGrader(_Grader):
    """Compare text with a reference: ``eq``, ``ne``, ``like`` (contains), ``ilike``."""

    type: Literal["string_check"] = "string_check"
    input: str
    reference: str
    operation: Literal["eq", "ne", "like", "ilike"]


class TextSimilarityGrader(_Grader):
    """Similarity between text and a reference on a 0..1 scale."""

    type: Literal["text_similarity"] = "text_similarity"
    input: str
    reference: str
    evaluation_metric: Literal[
        "fuzzy_match", "bleu", "gleu", "meteor", "cosine",
        "rouge_1", "rouge_2", "rouge_3", "rouge_4", "rouge_5", "rouge_l",
    ]  # fmt: skip
    pass_threshold: float | None = None


class ContentPart(BaseModel):
    """One part of a judge message: text (with templates), an image or audio."""

    model_config = ConfigDict(extra="allow")

    type: Literal["input_text", "output_text", "input_image", "input_audio"]
    text: str | None = None
    image_url: str | None = None
    detail: str | None = None
    file_id: str | None = None


class EvalMessage(_Spec):
    """A message sent to a judge model; text may contain templates."""

    role: Literal["system", "developer", "user", "assistant"]
    content: str | ContentPart | list[ContentPart]
    type: Literal["message"] | None = None

    def texts(self) -> list[str]:
        """Every text template in this message (images and audio have none)."""
        parts = self.content if isinstance(self.content, list) else [self.content]
        out = []
        for p in parts:
            if isinstance(p, str):
                out.append(p)
            elif p.text is not None:
                out.append(p.text)
        return out


class SamplingParams(_Spec):
    """Sampling settings for the judge model."""

    seed: int | None = None
    top_p: float | None = None
    temperature: float | None = None
    max_completions_tokens: int | None = Field(default=None, ge=1)
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = (
        None
    )


class ScoreModelGrader(_Grader):
    """A judge model answers with a number in ``range``; the score is clipped to that range."""

    type: Literal["score_model"] = "score_model"
    model: str = Field(min_length=1)
    input: list[EvalMessage] = Field(min_length=1)
    range: tuple[float, float] = (0.0, 1.0)
    sampling_params: SamplingParams | None = None
    pass_threshold: float | None = None

    @field_validator("range")
    @classmethod
    def _range_ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not v[0] < v[1]:
            raise ValueError(f"range must be [low, high] with low < high, got [{v[0]}, {v[1]}]")
        return v


class LabelModelGrader(_Grader):
    """A judge model picks one of ``labels``; 1.0 when it is one of ``passing_labels``."""

    type: Literal["label_model"] = "label_model"
    model: str = Field(min_length=1)
    input: list[EvalMessage] = Field(min_length=1)
    labels: list[str] = Field(min_length=2)
    passing_labels: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _passing_subset(self) -> LabelModelGrader:
        extra = [p for p in self.passing_labels if p not in self.labels]
        if extra:
            raise ValueError(
                f"passing_labels {extra} are not in labels {self.labels}; "
                "passing labels must be a subset of labels"
            )
        return self


class PythonGrader(_Grader):
    """``source`` (or ``source_file``, ftwizard only) defines ``grade(sample, item) -> float``."""

    type: Literal["python"] = "python"
    source: str | None = None
    source_file: str | None = None
    image_tag: str | None = None
    # Where the source text came from, so a syntax error names the file and line the user edits.
    _origin: Path | None = PrivateAttr(default=None)
    _first_line: int = PrivateAttr(default=1)

    @model_validator(mode="after")
    def _one_source(self) -> PythonGrader:
        if (self.source is None) == (self.source_file is None):
            raise ValueError("give exactly one of 'source' (code) or 'source_file' (a .py path)")
        return self

    @property
    def code(self) -> str:
        """The Python source (after the loader has read ``source_file``)."""
        if self.source is None:
            raise ValueError(f"python grader '{self.name}': source_file was not loaded")
        return self.source

    def origin(self) -> tuple[Path | None, int]:
        """The file holding the source and the file line where the source's line 1 is."""
        return self._origin, self._first_line

    def set_origin(self, path: Path | None, first_line: int) -> None:
        """Record where the source text lives (used for error messages)."""
        self._origin = path
        self._first_line = first_line


class RankingGrader(_Grader):
    """Ranking metric over a list answer (JSON list, list field, or one entry per line)."""

    type: Literal["ranking"] = "ranking"
    input: str
    reference: str
    metric: Literal["jaccard", "mrr", "precision_at_k", "recall_at_k"]
    k: int | None = Field(default=None, ge=1)
    case_sensitive: bool = True

    @model_validator(mode="after")
    def _k_when_needed(self) -> RankingGrader:
        if self.metric.endswith("_at_k") and self.k is None:
            raise ValueError(f"metric '{self.metric}' needs k (an integer >= 1)")
        return self


class NumericGrader(_Grader):
    """1.0 when the number in the answer is within tolerance of the reference."""

    type: Literal["numeric"] = "numeric"
    input: str
    reference: str
    tolerance: float = Field(default=0.0, ge=0)
    rel_tolerance: float = Field(default=0.0, ge=0)
    extract: Literal["last", "first", "whole"] = "last"


class RegexGrader(_Grader):
    """1.0 when ``pattern`` matches the rendered input."""

    type: Literal["regex"] = "regex"
    input: str
    pattern: str
    flags: list[Literal["ignorecase", "multiline", "dotall"]] = []
    mode: Literal["search", "fullmatch"] = "search"

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        import re

        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"pattern is not a valid regular expression: {exc}") from None
        return v


class JsonMatchGrader(_Grader):
    """Share of ``fields`` (dotted paths) equal between the answer's JSON and the reference."""

    type: Literal["json_match"] = "json_match"
    input: str
    reference: str
    fields: list[str] | None = None


class JsonSchemaGrader(_Grader):
    """1.0 when the answer is JSON that validates against ``schema``."""

    type: Literal["json_schema"] = "json_schema"
    input: str
    schema_: dict[str, Any] = Field(alias="schema")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("schema_")
    @classmethod
    def _valid_schema(cls, v: dict[str, Any]) -> dict[str, Any]:
        import jsonschema

        try:
            jsonschema.Draft202012Validator.check_schema(v)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"schema is not a valid JSON Schema: {exc.message}") from None
        return v


SubGrader = Annotated[
    StringCheckGrader
    | TextSimilarityGrader
    | ScoreModelGrader
    | LabelModelGrader
    | PythonGrader
    | RankingGrader
    | NumericGrader
    | RegexGrader
    | JsonMatchGrader
    | JsonSchemaGrader,
    Field(discriminator="type"),
]


class MultiGrader(_Grader):
    """Several graders keyed by name, combined by the ``calculate_output`` formula."""

    type: Literal["multi"] = "multi"
    graders: dict[str, SubGrader] = Field(min_length=1)
    calculate_output: str

    @field_validator("graders", mode="before")
    @classmethod
    def _list_to_dict(cls, v: Any) -> Any:
        # OpenAI's reference shows a list; key each grader by its name as the guide does.
        if isinstance(v, list):
            return {
                g.get("name", f"grader_{i}") if isinstance(g, dict) else i: g
                for i, g in enumerate(v)
            }
        return v

    @model_validator(mode="after")
    def _formula_names_known(self) -> MultiGrader:
        try:
            formula = parse_formula(self.calculate_output)
        except FormulaError as exc:
            raise ValueError(f"calculate_output: {exc}") from None
        unknown = sorted(formula.names - set(self.graders))
        if unknown:
            raise ValueError(
                f"calculate_output names unknown grader(s) {', '.join(unknown)}; "
                f"the graders are: {', '.join(self.graders)}"
            )
        return self


GraderSpec = Annotated[
    StringCheckGrader
    | TextSimilarityGrader
    | ScoreModelGrader
    | LabelModelGrader
    | PythonGrader
    | MultiGrader
    | RankingGrader
    | NumericGrader
    | RegexGrader
    | JsonMatchGrader
    | JsonSchemaGrader,
    Field(discriminator="type"),
]

AnyGrader = (
    StringCheckGrader
    | TextSimilarityGrader
    | ScoreModelGrader
    | LabelModelGrader
    | PythonGrader
    | MultiGrader
    | RankingGrader
    | NumericGrader
    | RegexGrader
    | JsonMatchGrader
    | JsonSchemaGrader
)


def spec_to_dict(spec: AnyGrader) -> dict[str, Any]:
    """The spec as plain JSON data, with ``schema`` under its real name and no empty fields."""
    return spec.model_dump(mode="json", by_alias=True, exclude_none=True)


def iter_graders(spec: AnyGrader) -> list[tuple[str, AnyGrader]]:
    """``[(path, grader)]`` for the spec and, for ``multi``, each sub-grader."""
    out: list[tuple[str, AnyGrader]] = [("", spec)]
    if isinstance(spec, MultiGrader):
        out += [(f"graders.{key}", g) for key, g in spec.graders.items()]
    return out
