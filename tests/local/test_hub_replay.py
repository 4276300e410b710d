"""A replay on a Hub model that is not on this machine: the task screen offers the download
(from the fake Hub, with progress), then dataset -> grader -> dry run -> local SFT -> deploy
(a local server) -> evaluate (base vs tuned, graded), all on a tiny Llama-family model."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftwizard.cli import main
from ftwizard.deploy.engine import local_server_alive
from ftwizard.evaluate.grader_comparison import GraderComparison
from ftwizard.providers.local.download import DownloadProgress, is_cached
from ftwizard.store import SessionStore
from ftwizard.widgets.model_download import ModelDownload
from tests.fakes.hf_hub import FakeHub
from tests.local.conftest import REPO
from tests.replay_steps import label_grader_step
from tests.tiny_local import Tickets

TRAIN_ROWS = 24
HELD_OUT_ROWS = 6

REPLAY = """\
version: 1
session: {{name: hub-llama, method: sft, backend: local, base_model: {repo}}}
actions:
  - screen: task
  - press: download-start
  - wait: {{for: model-downloaded, timeout: 60}}
  - press: next
  - screen: dataset
  - set: {{train-path: {train}, valid-path: {valid}}}
  - press: check-dataset
  - wait: {{for: dataset-checked, timeout: 120}}
  - expect: {{dataset.result.errors: 0, dataset.result.examples: {examples}}}
  - press: next
{grader_step}  - screen: dryrun
  - set: {{dryrun-samples: {held_out}}}
  - press: dryrun-run
  - wait: {{for: dryrun-finished, timeout: 120}}
  - expect: {{dryrun.n: {held_out}}}
  - set: {{dryrun-override-reason: "a random-weight test model: it cannot know the labels"}}
  - press: dryrun-proceed
  - press: next
  - screen: training
  - set: {{hp-max_steps: "3", hp-eval_steps: "3", hp-batch_size: "4", hp-max_length: "256"}}
  - press: start-training
  - wait: {{for: training-finished, timeout: 300}}
  - expect: {{training.status: succeeded, training.hyperparameters.max_steps: 3}}
  - press: next
  - screen: deploy
  - press: deploy-model
  - wait: {{for: deployed, timeout: 180}}
  - set: {{deploy-prompt: "I was charged twice for my Pro plan last week."}}
  - press: deploy-send
  - wait: {{for: model-answered, timeout: 60}}
  - expect: {{deployment.model: "openai:ftwizard-tuned"}}
  - press: next
  - screen: evaluate
  - set: {{eval-data: {held_out_file}}}
  - press: run-grader-eval
  - wait: {{for: evaluation-graded, timeout: 180}}
  - expect: {{evaluation.grader_n: {held_out}}}
"""


def _head(source: Path, rows: int, target: Path) -> Path:
    lines = source.read_text(encoding="utf-8").splitlines()
    target.write_text("\n".join(lines[:rows]) + "\n", encoding="utf-8")
    return target


@pytest.mark.slow
def test_a_replay_downloads_a_hub_model_then_trains_deploys_and_evaluates_it(
    hub: FakeHub,
    store: SessionStore,
    tickets: Tickets,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import huggingface_hub.constants as constants

    # Small chunks, so that even a tiny model's weights arrive in several progress updates.
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 4096)
    shown: list[tuple[DownloadProgress, str]] = []
    show_progress = ModelDownload._progress

    def watch(widget: ModelDownload, progress: DownloadProgress) -> None:
        show_progress(widget, progress)
        status = widget.query_one("#download-status")
        shown.append((progress, str(status.render())))

    monkeypatch.setattr(ModelDownload, "_progress", watch)
    train = _head(tickets.train, TRAIN_ROWS, tmp_path / "train.jsonl")
    valid = _head(tickets.valid, HELD_OUT_ROWS, tmp_path / "valid.jsonl")
    replay = tmp_path / "hub.yaml"
    replay.write_text(
        REPLAY.format(
            repo=REPO,
            train=train,
            valid=valid,
            examples=TRAIN_ROWS,
            held_out=HELD_OUT_ROWS,
            held_out_file=valid,
            grader_step=label_grader_step(),
        ),
        encoding="utf-8",
    )
    assert not is_cached(REPO)

    code = main(["--replay", str(replay)])
    out = capsys.readouterr()
    assert code == 0, f"{out.out[-3000:]}\n{out.err[-2000:]}"

    # The weights came from the fake Hub, once, and the screen showed them arriving.
    gets = [p for m, p, _, _ in hub.requests if m == "GET" and "/resolve/" in p]
    assert sum(p.endswith("/model.safetensors") for p in gets) == 1
    assert is_cached(REPO)
    assert len(shown) > 2 and shown[-1][0].done_bytes == shown[-1][0].total_bytes
    assert all("MB /" in text for _, text in shown)
    (summary,), _ = store.list()
    session = store.load(summary.id)
    assert session.task.base_model == REPO
    assert session.training.status == "succeeded"
    # Three optimizer steps, measured on the validation rows at the end.
    (last,) = [m for m in session.training.metrics if m["step"] == 3]
    assert last["valid_loss"] is not None and last["valid_loss"] > 0
    assert session.deployment.test_reply  # the local server answered the test call
    # A replay leaves no process behind: the server it started is stopped at its end.
    assert "stopped the local server it started" in out.out
    assert not local_server_alive(session)
    # Both models answered every held-out row and each answer was graded: the tiny model
    # cannot learn the labels in three steps, so the scores themselves are not compared.
    report = GraderComparison.model_validate_json(
        Path(session.evaluation.grader_report_file or "").read_text(encoding="utf-8")
    )
    assert report.base_model.endswith(REPO) and report.tuned_model == "ftwizard-tuned"
    assert report.n == HELD_OUT_ROWS == len(report.rows) and report.skipped == 0
    assert all(r.base is not None and r.tuned is not None for r in report.rows)
    assert session.evaluation.grader_n == HELD_OUT_ROWS
