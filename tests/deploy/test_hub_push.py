"""``ftwizard export --to hub``: the adapter and its model card pushed through huggingface_hub."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ftwizard.cli import main
from ftwizard.session import Session
from tests.fakes.hf_hub import FakeHub

pytestmark = pytest.mark.slow


@pytest.fixture
def upload_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """A fake Hub at ``HF_ENDPOINT`` taking uploads with ``HF_TOKEN``."""
    with FakeHub() as fake:
        monkeypatch.setenv("HF_ENDPOINT", fake.endpoint)
        monkeypatch.setenv("HF_TOKEN", fake.write_token)
        import huggingface_hub.constants as constants

        monkeypatch.setattr(constants, "ENDPOINT", fake.endpoint)
        yield fake


def test_the_adapter_and_its_card_reach_the_hub(
    trained_session: Session, upload_hub: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    trained_session.evaluation.tuned_win_rate = 0.7
    trained_session.evaluation.tuned_win_ci95 = (0.55, 0.82)
    trained_session.evaluation.n = 40
    code = main(["export", trained_session.id, "--to", "hub", "--repo", "me/tickets", "--json"])
    assert code == 0, capsys.readouterr().err
    result = json.loads(capsys.readouterr().out)
    assert result["url"].startswith(f"{upload_hub.endpoint}/me/tickets/commit/")
    repo = upload_hub.repos["me/tickets"]
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md"} <= set(repo.files)
    assert upload_hub.created == [
        {"name": "tickets", "organization": "me", "visibility": "private", "type": "model"}
    ]
    # Every write carried the token from HF_TOKEN.
    writes = [r for r in upload_hub.requests if r[0] == "POST"]
    assert writes and all(r[3] == f"Bearer {upload_hub.write_token}" for r in writes)
    assert upload_hub.validated[-1]["base_model"] == "builtin-tiny"
    card = repo.files["README.md"].decode()
    assert 'base_model: "builtin-tiny"' in card and "library_name: peft" in card
    train = Path(trained_session.dataset.result.training_file)  # type: ignore[union-attr]
    digest = hashlib.sha256(train.read_bytes()).hexdigest()
    assert f"{train.stat().st_size} bytes, sha256 `{digest}`" in card
    assert "- lora_r: 16" in card and "- learning_rate:" in card
    assert "## Training" in card and "## Evaluation" in card


def test_without_a_token_the_push_says_what_to_set(
    trained_session: Session,
    upload_hub: FakeHub,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("HF_TOKEN")
    assert main(["export", trained_session.id, "--to", "hub", "--repo", "me/tickets"]) == 2
    assert "set HF_TOKEN to a Hugging Face token with write access" in capsys.readouterr().err
    assert not upload_hub.repos


def test_a_token_without_write_access_is_refused_with_a_hint(
    trained_session: Session,
    upload_hub: FakeHub,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_read_only")
    assert main(["export", trained_session.id, "--to", "hub", "--repo", "me/tickets"]) == 1
    err = capsys.readouterr().err
    assert "the Hub refused the upload to me/tickets" in err and "hf_read_only" not in err
