"""``ftwizard report ID``: Markdown, HTML and PNG plots of real data, absent plots named."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from ftwizard.cli import main
from ftwizard.flow import start_session
from ftwizard.providers.training import MetricPoint
from ftwizard.report.build import write_report
from ftwizard.report.plots import histogram_png
from ftwizard.store import SessionStore
from tests.test_ledger import finished_session

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_a_finished_session_gets_every_plot_it_has_data_for(
    store: SessionStore, tmp_path: Path
) -> None:
    session = finished_session(
        store, tmp_path, "report bot", finished=datetime(2026, 11, 10, tzinfo=UTC)
    )
    files = write_report(store, session.id)
    folder = store.session_dir(session.id) / "report"
    assert Path(files.markdown) == folder / "report.md"
    drawn = {p.name: p for p in files.plots if p.file}
    assert set(drawn) == {"dryrun-histogram", "training-loss", "grader-means", "win-rates"}
    for plot in drawn.values():
        path = Path(plot.file or "")
        assert path.parent == folder
        assert path.read_bytes().startswith(PNG_MAGIC)
        with Image.open(path) as image:
            assert image.size == (700, 400)
            # A real plot has ink on it, not one flat colour.
            darkest, lightest = image.convert("L").getextrema()
            assert darkest < 100 < lightest
    markdown = Path(files.markdown).read_text(encoding="utf-8")
    for plot in drawn.values():
        assert f"]({Path(plot.file or '').name})" in markdown
    # SFT metrics carry losses only: the reward plot is named as absent, with the reason.
    assert "*Training reward: not drawn — the training metrics have no reward values.*" in (
        markdown
    )
    assert (
        "## Plots not drawn\n\n- Training reward: the training metrics have no reward values."
        in markdown
    )
    assert "tuned wins 28, ties 10, base wins 2" in markdown
    assert "Verdict **GO** on 8 graded answers: mean 0.562, cost $0.0123." in markdown
    html = Path(files.html).read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert '<img src="win-rates.png" alt="A/B win rates by judge"' in html
    assert "<table>" in html  # the flips table


def test_rewards_are_plotted_when_the_metrics_have_them(
    store: SessionStore, tmp_path: Path
) -> None:
    session = finished_session(
        store, tmp_path, "rft bot", finished=datetime(2026, 11, 11, tzinfo=UTC), evaluated=False
    )
    session.training.metrics = [
        MetricPoint(step=s, train_reward=s / 10, valid_reward=s / 12).model_dump(mode="json")
        for s in range(1, 11)
    ]
    store.save(session)
    files = write_report(store, session.id)
    outcome = {p.name: p for p in files.plots}
    assert outcome["training-reward"].file is not None
    assert outcome["training-loss"].absent_reason == "the training metrics have no loss values"
    assert outcome["win-rates"].absent_reason == "no blind A/B has been recorded"


def test_a_new_session_draws_nothing_and_says_why(
    store: SessionStore, capsys: pytest.CaptureFixture[str]
) -> None:
    session = start_session(store, "empty")
    assert main(["report", session.id, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["plots"] == {}
    assert out["absent"] == {
        "dryrun-histogram": "no dry run has been recorded",
        "training-loss": "no training metrics have been recorded",
        "training-reward": "no training metrics have been recorded",
        "checkpoint-scores": "no checkpoint has been scored with the grader",
        "grader-means": "no grader comparison has been recorded",
        "win-rates": "no blind A/B has been recorded",
    }
    folder = store.session_dir(session.id) / "report"
    assert sorted(p.name for p in folder.iterdir()) == ["report.html", "report.md"]
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    assert "No dry run recorded." in markdown and "No evaluation recorded." in markdown


def test_a_stale_plot_is_removed_when_its_data_is_gone(store: SessionStore, tmp_path: Path) -> None:
    session = finished_session(
        store, tmp_path, "stale", finished=datetime(2026, 11, 12, tzinfo=UTC), evaluated=False
    )
    write_report(store, session.id)
    loss = store.session_dir(session.id) / "report" / "training-loss.png"
    assert loss.is_file()
    session.training.metrics = []
    store.save(session)
    write_report(store, session.id)
    assert not loss.exists()


def test_the_plot_is_drawn_from_the_data_it_is_given(tmp_path: Path) -> None:
    edges = [i / 10 for i in range(11)]
    first = histogram_png(edges, [1] * 10, tmp_path / "a.png", title="t")
    same = histogram_png(edges, [1] * 10, tmp_path / "b.png", title="t")
    other = histogram_png(edges, [0] * 9 + [10], tmp_path / "c.png", title="t")
    assert first.read_bytes() == same.read_bytes()
    assert first.read_bytes() != other.read_bytes()


def test_report_of_an_unknown_session_is_unusable_input(
    store: SessionStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "no-such-session"]) == 2
    assert "no session 'no-such-session'" in capsys.readouterr().err


def test_show_json_carries_the_evaluation_and_the_dry_run_figures(
    store: SessionStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = finished_session(
        store, tmp_path, "shown", finished=datetime(2026, 11, 13, tzinfo=UTC)
    )
    assert main(["show", session.id, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    ev = data["evaluation"]
    assert ev["base_mean"] == pytest.approx(0.25)
    assert ev["tuned_mean"] == pytest.approx(0.9)
    assert ev["ab_verdict"] == "tuned" and ev["n"] == 40
    assert ev["tuned_win_ci95"][0] < ev["tuned_win_rate"] < ev["tuned_win_ci95"][1]
    assert Path(ev["ab_report_file"]).is_file() and Path(ev["grader_report_file"]).is_file()
    assert data["dryrun"]["verdict"] == "GO"
    assert data["dryrun"]["mean"] == pytest.approx(0.5625)
    assert data["dryrun"]["cost_usd"] == pytest.approx(0.0123)


def test_without_matplotlib_the_report_is_written_and_names_every_plot_as_not_drawn(
    store: SessionStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ftwizard.report.plots as plots

    session = finished_session(
        store, tmp_path, "no plots", finished=datetime(2026, 11, 14, tzinfo=UTC)
    )
    # Stands in for an environment without the optional dependency.
    monkeypatch.setattr(plots, "plotting_unavailable", lambda: "matplotlib is not installed")
    files = write_report(store, session.id)
    assert all(p.file is None for p in files.plots)
    reasons = {p.name: p.absent_reason for p in files.plots}
    # Where the data is there, the missing library is the reason; where it is not, the data.
    assert reasons["win-rates"] == "matplotlib is not installed"
    assert reasons["training-reward"] == "the training metrics have no reward values"
    markdown = Path(files.markdown).read_text(encoding="utf-8")
    assert "- A/B win rates by judge: matplotlib is not installed." in markdown
    assert not list((store.session_dir(session.id) / "report").glob("*.png"))


def test_repeated_runs_report_their_spread(tmp_path: Path) -> None:
    import asyncio
    import statistics

    from ftwizard.evaluate.ab import Judge, JudgeOptions, PairItem, run_pairwise
    from ftwizard.providers.base import ChatMessage, GenerationRequest
    from ftwizard.report.evaluation import pairwise_summary
    from tests.scripted_judge import ScriptedJudge, user_text

    def first_if_right(request: GenerationRequest) -> str:
        """Picks Response A whenever it is right: a mix of merit and position bias, so the
        outcome of items where both are right moves with each run's order."""
        shown_first = user_text(request).split("[Response A]")[1].split("[Response B]")[0]
        return json.dumps({"winner": "A" if "right" in shown_first else "B", "reason": "r"})

    items = [
        PairItem(
            id=f"i{n}",
            prompt=[ChatMessage(role="user", content=f"q{n}")],
            answer_a="right" if n % 2 else "wrong",
            answer_b="right",
        )
        for n in range(20)
    ]
    judge = Judge("j", ScriptedJudge(first_if_right), "m")
    report = asyncio.run(run_pairwise(items, [judge], JudgeOptions(seed=0, runs=3)))
    assert report.repeats is not None and report.repeats.std is not None
    rates = [r for r in report.repeats.b_win_rates if r is not None]
    assert len(rates) == 3
    assert report.repeats.std == pytest.approx(statistics.stdev(rates))
    summary = pairwise_summary(report)
    assert f"over 3 runs (seeds 0 - 2): mean win rate {statistics.mean(rates):.1%}" in summary
    assert f"std {statistics.stdev(rates):.3f}" in summary
