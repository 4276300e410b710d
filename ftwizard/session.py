"""The session: one saved fine-tuning project, as a pydantic model.

A session is the single source of truth for every step of the wizard: each step reads its
inputs from it and writes its summary into its own section. :mod:`ftwizard.store` keeps
sessions on disk.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# Evidence about weights and checkpoints: re-exported, since the sections below hold them.
from ftwizard.session_evidence import CheckpointEval, CheckpointScore, ModelIdentity  # noqa: F401

SCHEMA_VERSION = 1


def now_utc() -> datetime:
    return datetime.now(UTC)


class Method(StrEnum):
    """The fine-tuning method."""

    sft = "sft"
    dpo = "dpo"
    rft = "rft"


class Backend(StrEnum):
    """Where training runs."""

    local = "local"
    openai = "openai"
    vertex = "vertex"
    together = "together"
    fireworks = "fireworks"


class StepId(StrEnum):
    """The wizard's steps, in order."""

    task = "task"
    dataset = "dataset"
    grader = "grader"
    dryrun = "dryrun"
    training = "training"
    deploy = "deploy"
    evaluate = "evaluate"


class TaskSpec(BaseModel):
    """What the user wants to train: the method, the backend and the base model."""

    model_config = ConfigDict(extra="forbid")

    method: Method | None = None
    backend: Backend | None = None
    base_model: str | None = None


class DatasetChoice(BaseModel):
    """What the user chose on the dataset step; the prepared files are derived from it."""

    model_config = ConfigDict(extra="forbid")

    train_path: str | None = None
    valid_path: str | None = None
    # The explicit choice to train on a cleaned copy without the lines that have errors.
    drop_invalid: bool = False
    # Convert to the format the backend trains on when the file is in another one.
    convert: bool = False
    # Transform specs (ftwizard.datasets.transforms.Transform as JSON), applied in order.
    transforms: list[dict[str, Any]] = Field(default_factory=list)
    # A fraction ("0.1") or a count ("50") to hold out for validation; None keeps valid_path.
    split_val: str | None = None
    split_seed: int = 0
    split_stratify: str | None = None
    topic_field: str | None = None
    # Vision models whose processor resizes images (Qwen-VL): the pixel cap of each image, the
    # one setting behind the image-token counts, the training estimate and local training.
    # None: the model's own.
    max_pixels: int | None = Field(default=None, ge=28 * 28, le=16384 * 28 * 28)


class DatasetResult(BaseModel):
    """What the last preparation of the dataset produced."""

    model_config = ConfigDict(extra="forbid")

    format: str
    examples: int
    # Training examples without errors (not the validation file's, which is
    # ``validation_examples``).
    valid_examples: int
    errors: int
    warnings: int
    tokens_total: int
    training_file: str
    validation_file: str | None = None
    report_file: str
    # Size and modification time of the user's files when prepared, to notice later edits.
    fingerprint: str
    notes: list[str] = Field(default_factory=list)
    # Images in the training file and their tokens on the target (inside tokens_total).
    images: int = 0
    image_tokens: int = 0
    image_tokens_note: str | None = None
    # Examples in the validation file (given or held out by the split); None without one, or
    # when the check that recorded this result predates the count.
    validation_examples: int | None = None


class DistillChoice(BaseModel):
    """The dataset step's distill branch: relabel prompts with a teacher (secret-free)."""

    model_config = ConfigDict(extra="forbid")

    # The rows to relabel; None means the training file. Recorded at the first run, because
    # a successful run makes the distilled file the training file.
    prompts_path: str | None = None
    teacher: str | None = None  # a model string, e.g. "anthropic:claude-haiku-4-5"
    base_url: str | None = None  # the teacher's API, e.g. an OpenAI-compatible server
    grader_path: str | None = None  # keeps only the answers this grader accepts
    threshold: float = 1.0


class DistillSummary(BaseModel):
    """What the last distill run produced; the full metadata is ``metadata_file``."""

    model_config = ConfigDict(extra="forbid")

    data: str
    output: str
    journal: str
    metadata_file: str
    teacher: str
    grader: str | None = None
    threshold: float
    n: int
    answered: int
    failed: int
    graded: int
    correct: int
    kept: int
    teacher_accuracy: float | None = None
    accuracy_text: str
    grade_errors: int = 0
    reused: int = 0
    requests_sent: int = 0
    cost_usd: float | None = None
    cost_usd_this_run: float | None = None
    created_at: str


class AnswersImportChoice(BaseModel):
    """The distill pane's import of a teacher's existing answers (CSV files, no spend)."""

    model_config = ConfigDict(extra="forbid")

    files: list[str] = Field(default_factory=list)
    # ``COLUMN[=CSV_COLUMN][~TOLERANCE]`` each (ftwizard.distill.imported.KeyColumn).
    keys: list[str] = Field(default_factory=list)
    answer_column: str = "answer"


class AnswersImportSummary(BaseModel):
    """What the last import kept; the full statistics are ``metadata_file``."""

    model_config = ConfigDict(extra="forbid")

    data: str
    output: str
    metadata_file: str
    rows: int
    matched: int
    match_text: str
    graded: int
    correct: int
    teacher_accuracy: float | None = None
    accuracy_text: str
    kept: int
    unused_answers: int = 0
    ambiguous: int = 0
    created_at: str


class DatasetSection(BaseModel):
    """The dataset step: the user's choices and what they produced."""

    model_config = ConfigDict(extra="forbid")

    choice: DatasetChoice = Field(default_factory=DatasetChoice)
    result: DatasetResult | None = None
    distill: DistillChoice = Field(default_factory=DistillChoice)
    distilled: DistillSummary | None = None
    answers_import: AnswersImportChoice = Field(default_factory=AnswersImportChoice)
    imported: AnswersImportSummary | None = None


class GraderTestRow(BaseModel):
    """One graded sample from the grader step's test."""

    model_config = ConfigDict(extra="forbid")

    record: int
    expected: str | None = None  # what the grader compares the answer with, when it says
    output: str
    score: float
    notes: str = ""
    error: str | None = None


class GraderTest(BaseModel):
    """The last "test on samples" of the grader: what was graded, and how."""

    model_config = ConfigDict(extra="forbid")

    spec_digest: str  # the spec the test ran, to notice edits made after it
    source: str  # "model" or "dataset"
    source_label: str
    rows: list[GraderTestRow]
    mean: float
    n_errors: int


class GraderSection(BaseModel):
    """The grader step: the spec, its judge, its last test and the user's confirmation."""

    model_config = ConfigDict(extra="forbid")

    # "judge" (LLM-as-judge), "script" (python) or "builtin" (string_check, numeric, ...).
    style: str | None = None
    example: str | None = None  # the gallery example the spec started from
    spec_text: str | None = None  # the spec as the user edits it (YAML)
    judge_base_url: str | None = None
    test: GraderTest | None = None
    # The user's answer to "does the scoring look right?" for the spec digest tested.
    confirmed_digest: str | None = None


class DryRunSection(BaseModel):
    """The dry-run step: its settings, the summary of the last run, and the user's answer.

    The full report (every sample, histogram, reasons) is ``report_file`` in the artifacts.
    """

    model_config = ConfigDict(extra="forbid")

    samples: int = 200
    concurrency: int = 16
    seed: int = 0
    # Answers per prompt (GRPO's group size); None: 4 for RFT, 1 for SFT and DPO.
    samples_per_prompt: int | None = None
    # The output token limit sent with each call; None: the provider's default.
    max_tokens: int | None = None
    # One provider batch instead of direct calls: half the price, hours instead of minutes.
    batch: bool = False
    report_file: str | None = None
    grader_digest: str | None = None  # the grader spec the run graded with
    data_file: str | None = None  # the training file it sampled
    verdict: str | None = None  # "GO" | "WARNING" | "NO-GO"
    n: int | None = None
    mean: float | None = None
    std: float | None = None
    pct_gt0: float | None = None
    pct_eq1: float | None = None
    cost_usd: float | None = None
    # A WARNING acknowledged, or a NO-GO overridden with a reason: recorded, never implied.
    acknowledged: bool = False
    override_reason: str | None = None


class TrainingIntent(BaseModel):
    """A remote create about to happen: saved before the call, completed with the remote id.

    On resume, an intent without a job id is looked up by its key before anything is created
    again, so a crash between the create and the save never starts a second job.
    """

    model_config = ConfigDict(extra="forbid")

    key: str
    created: datetime = Field(default_factory=now_utc)
    job_id: str | None = None


class TrainingSection(BaseModel):
    """The training step: confirmed settings, the job, and what it reported."""

    model_config = ConfigDict(extra="forbid")

    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    estimated_cost_usd: float | None = None
    confirmed_at: datetime | None = None
    intent: TrainingIntent | None = None
    run_dir: str | None = None  # local backend: the run folder the worker writes to
    status: str | None = None  # queued | running | paused | succeeded | failed | cancelled
    raw_status: str | None = None
    error: str | None = None
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    metrics: list[dict[str, Any]] = Field(default_factory=list)  # MetricPoint JSON, in order
    metrics_cursor: str | None = None
    checkpoints: list[dict[str, Any]] = Field(default_factory=list)  # CheckpointInfo JSON
    chosen_checkpoint: str | None = None
    # How the chosen checkpoint was picked: "grader score", a validation metric, or "hand".
    chosen_by: str | None = None
    checkpoint_eval: CheckpointEval | None = None
    cost_usd: float | None = None
    endpoint: str | None = None  # Vertex: the tuned model's endpoint
    # The job's event log (JobEvent JSON, newest last, bounded) and its own cursor.
    events: list[dict[str, Any]] = Field(default_factory=list)
    events_cursor: str | None = None
    estimated_seconds: float | None = None
    # Training without a passed dry run: the user's recorded reason, never implied.
    dryrun_override: str | None = None


class DeploymentSection(BaseModel):
    """The deploy step: how to call the tuned model, and the user's test call."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None  # a model string: openai:ft:..., vertex:..., local:PATH
    base_url: str | None = None  # an OpenAI-compatible server (local serving)
    endpoint: str | None = None
    deployed_at: datetime | None = None
    test_prompt: str | None = None
    test_system: str | None = None  # the system prompt the test call sent, if any
    test_reply: str | None = None
    # Local deployment: the exported adapter, the merged model and the server's folder.
    adapter_dir: str | None = None
    merged_dir: str | None = None
    server_dir: str | None = None
    # What is deployed: the adapter's (and merged export's) digests, or the hosted model id.
    identity: ModelIdentity | None = None


class EvaluationSection(BaseModel):
    """The evaluate step: summaries of the comparisons; full reports are artifact files."""

    model_config = ConfigDict(extra="forbid")

    held_out_file: str | None = None
    # The model the tuned one is compared with instead of the base model (a model string):
    # an imported OpenAI fine-tune, so the A/B is old fine-tune vs new model.
    compare_model: str | None = None
    base_mean: float | None = None
    tuned_mean: float | None = None
    grader_report_file: str | None = None
    judges: list[str] = Field(default_factory=list)
    tuned_win_rate: float | None = None
    tuned_win_ci95: tuple[float, float] | None = None
    ab_verdict: str | None = None
    ab_report_file: str | None = None
    n: int | None = None
    # The A/B settings the user chose (judges above); the results above are from them.
    judge_base_url: str | None = None
    both_orders: bool = True
    seed: int = 0
    runs: int = 1  # judging repeated with seeds seed, seed + 1, ... to show the variance
    # The grader comparison's own count and its pass / fail flips.
    grader_n: int | None = None
    fail_to_pass: int | None = None
    pass_to_fail: int | None = None
    # The A/B's figures a changelog quotes beside the win rate.
    kappa: float | None = None
    first_position_rate: float | None = None
    # What each evaluation evaluated as the tuned model (digests or hosted id), when it ran.
    grader_identity: ModelIdentity | None = None
    ab_identity: ModelIdentity | None = None


class JournalEntry(BaseModel):
    """One user decision, in the same vocabulary as a replay action.

    ``action`` is a replay action mapping such as ``{"set": {"method": "rft"}}``,
    ``{"press": "next"}`` or ``{"screen": "task"}``.
    """

    model_config = ConfigDict(extra="forbid")

    at: datetime
    screen: str
    action: dict[str, Any]


class Session(BaseModel):
    """Everything ftwizard knows about one fine-tuning project.

    Each step's issue adds its own section (dataset, grader, dry run, training, deployment,
    evaluations); a section is ``None`` until its step has been worked on.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    schema_version: int = SCHEMA_VERSION
    id: str
    name: str
    created: datetime = Field(default_factory=now_utc)
    updated: datetime = Field(default_factory=now_utc)
    step: StepId = StepId.task
    task: TaskSpec = Field(default_factory=TaskSpec)
    dataset: DatasetSection = Field(default_factory=DatasetSection)
    grader: GraderSection = Field(default_factory=GraderSection)
    dryrun: DryRunSection = Field(default_factory=DryRunSection)
    training: TrainingSection = Field(default_factory=TrainingSection)
    deployment: DeploymentSection = Field(default_factory=DeploymentSection)
    evaluation: EvaluationSection = Field(default_factory=EvaluationSection)
    journal: list[JournalEntry] = Field(default_factory=list)

    def record(self, screen: str, action: dict[str, Any]) -> None:
        """Append a user decision to the journal.

        Consecutive ``set`` actions on the same widget are folded into one entry, so typing a
        model name records the final value rather than every keystroke.
        """
        last = self.journal[-1] if self.journal else None
        if (
            last is not None
            and "set" in action
            and last.screen == screen
            and "set" in last.action
            and set(last.action["set"]) == set(action["set"])
        ):
            self.journal[-1] = JournalEntry(at=now_utc(), screen=screen, action=action)
            return
        self.journal.append(JournalEntry(at=now_utc(), screen=screen, action=action))


def assign(section: BaseModel, field: str, value: Any) -> bool:
    """Set ``section.field`` to ``value``; return whether that changed anything.

    Screens apply a user's choice with it: an unchanged value is not a decision to journal.
    """
    if getattr(section, field) == value:
        return False
    setattr(section, field, value)
    return True


class SessionSummary(BaseModel):
    """One row of the session list (``ftwizard sessions``)."""

    id: str
    name: str
    step: str
    backend: str | None
    method: str | None
    base_model: str | None
    updated: datetime


def summarize(session: Session) -> SessionSummary:
    """The list row for a session."""
    return SessionSummary(
        id=session.id,
        name=session.name,
        step=session.step.value,
        backend=session.task.backend.value if session.task.backend else None,
        method=session.task.method.value if session.task.method else None,
        base_model=session.task.base_model,
        updated=session.updated,
    )
