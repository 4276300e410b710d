"""The dataset screen's Topics tab: examples grouped by a field, or by keywords."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, DataTable, Input

from ftwizard.errors import FtwizardError
from ftwizard.screens.step import StepScreen
from ftwizard.session import DatasetChoice


class TopicsTab(StepScreen):
    """The Topics tab's part of :class:`DatasetScreen` (a mixin of it)."""

    def compose_topics(self) -> ComposeResult:
        """The topic field and the table of topics."""
        with Horizontal(classes="row"):
            yield Input(placeholder="topic field (empty: keywords)", id="topic-field")
            yield Button("Compute topics", id="compute-topics")
        yield DataTable(id="topics", cursor_type="row")

    def _mount_topics(self, choice: DatasetChoice) -> None:
        self.query_one("#topic-field", Input).value = choice.topic_field or ""
        topics = self.query_one("#topics", DataTable)
        for label, width in (("Topic", 40), ("Examples", 8), ("Share", 6)):
            topics.add_column(label, key=label.lower(), width=width)

    def compute_topics(self) -> None:
        """Group the training examples by topic in a worker."""
        result = self.session.dataset.result
        path = result.training_file if result else self.session.dataset.choice.train_path
        if not path:
            self.notify("Choose a training file first.", severity="warning")
            return
        self._run_topics(path, self.session.dataset.choice.topic_field)

    @work(thread=True, exclusive=True, group="topics", exit_on_error=False)
    def _run_topics(self, path: str, field: str | None) -> None:
        from ftwizard.datasets.topics import compute_topics

        try:
            tree = compute_topics(path, field=field)
        except FtwizardError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error")
            return
        rows: list[tuple[str, int, str]] = []
        for topic in tree.topics:
            share = f"{topic.count / tree.total:.0%}" if tree.total else "-"
            rows.append((topic.label, topic.count, share))
            for child in topic.children:
                child_share = f"{child.count / tree.total:.0%}" if tree.total else "-"
                rows.append((f"  {child.label}", child.count, child_share))
        self.app.call_from_thread(self._show_topics, rows)

    def _show_topics(self, rows: list[tuple[str, int, str]]) -> None:
        table = self.query_one("#topics", DataTable)
        table.clear()
        for row in rows:
            table.add_row(*row)
