"""The training screen's checkpoints: the table, choosing one (or the best), the summary."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable, Static

from ftwizard.errors import InputError
from ftwizard.screens.step import StepScreen
from ftwizard.screens.training.charts import (
    duration_text,
)
from ftwizard.training import results as training_results


class CheckpointsPart(StepScreen):
    """The training screen's checkpoints (a mixin of :class:`TrainingScreen`)."""

    def _show_checkpoints(self) -> None:
        table = self.query_one("#training-checkpoints", DataTable)
        table.clear()
        from ftwizard.training.choice import best_choice

        by_metric = training_results.best_checkpoint_of(self.session)
        best = best_choice(self.session)
        chosen = self.session.training.chosen_checkpoint
        for checkpoint in training_results.checkpoints_of(self.session):
            metric = by_metric[1] if by_metric else None
            value = checkpoint.metrics.get(metric) if metric else None
            marks = []
            if best is not None and best.checkpoint.id == checkpoint.id:
                marks.append("best")
            if chosen is not None and checkpoint.name == chosen:
                marks.append("chosen")
            table.add_row(
                checkpoint.id,
                checkpoint.step if checkpoint.step is not None else "-",
                f"{metric} {value:.4f}" if value is not None else "-",
                ", ".join(marks),
                key=checkpoint.id,
            )
        model = training_results.final_model(self.session)
        self.query_one("#chosen-model", Static).update(
            f"Model to deploy: {model}" if model else "No model yet."
        )

    def _show_summary(self) -> None:
        target = self.query_one("#training-summary", Static)
        if not self._finished():
            target.update("")
            return
        summary = training_results.training_summary(self.session)
        text = Text()
        state = summary["status"]
        text.append(f"Job {state}", style="bold green" if state == "succeeded" else "bold red")
        latest = ", ".join(f"{k} {v:.4f}" for k, v in summary["latest"].items())
        text.append(f"\nFinal metrics: {latest or 'none reported'}")
        text.append(f"\nDuration {duration_text(summary['duration_s'])}")
        tokens = summary["trained_tokens"]
        text.append(f"   trained tokens {tokens:,}" if tokens else "   trained tokens -")
        cost = summary["cost_usd"]
        text.append(f"   cost ${cost:,.2f}" if cost is not None else "   cost -")
        if summary["best_checkpoint"]:
            text.append(f"\nBest checkpoint by {summary['best_by']}: {summary['best_checkpoint']}")
        if summary["choice_note"]:
            text.append(f"\n{summary['choice_note']}", style="bold yellow")
        for line in summary["advice"]:
            text.append(f"\n{line}", style="yellow")
        target.update(text)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id != "training-checkpoints":
            return
        event.stop()
        # Enter on a row acts here: no row-details dialog from the step frame.
        event.prevent_default()
        checkpoint_id = str(event.row_key.value)
        # Journaled as a replay repeats it: move to the row, then press the button.
        name = self.screen_name
        self.wizard.journal({"set": {"training-checkpoints": checkpoint_id}}, screen=name)
        self.wizard.journal({"press": "choose-checkpoint"}, screen=name)
        self._choose(checkpoint_id)

    def _choose_highlighted(self) -> None:
        table = self.query_one("#training-checkpoints", DataTable)
        if table.row_count == 0:
            self.notify("No checkpoint yet.", severity="warning")
            return
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        self._choose(str(row_key.value))

    def _choose(self, checkpoint_id: str) -> None:
        try:
            training_results.choose_checkpoint(self.session, checkpoint_id)
        except InputError as exc:
            self.notify(str(exc), severity="warning")
            return
        self.wizard.save_session()
        self._show_checkpoints()
        self.refresh_frame()

    def _choose_best(self) -> None:
        from ftwizard.training.choice import choose_best

        try:
            best = choose_best(self.session)
        except InputError as exc:
            self.notify(str(exc), severity="warning")
            return
        self.notify(f"Chose {best.checkpoint.id} by {best.by}.")
        self.wizard.save_session()
        self._show_checkpoints()
        self._show_summary()
        self.refresh_frame()
