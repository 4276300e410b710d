"""The grader step's fit panel: load a grader file, and map the row fields the data lacks.

A gallery example or a loaded file may read a row field the user's data does not have
(``exact_answer`` reads ``{{item.answer}}``); the panel says which, and offers the data's own
fields to read instead. Mapping rewrites the spec text, journaled as the spec it makes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import Input, Select, Static

from ftwizard.errors import FtwizardError
from ftwizard.graders.fitting import field_choices, map_field, missing_fields
from ftwizard.screens.file_picker import FilePickerScreen
from ftwizard.screens.step import StepScreen


class FitMixin(StepScreen):
    """Loading a grader file by path or Browse, and mapping missing row fields."""

    # The data's fields (read once per screen), and the choices shown in the map select.
    _fields: set[str] | None = None
    _fields_read = False
    _map_choices: tuple[str, ...] = ()

    def data_fields(self) -> set[str] | None:
        """The fields of the data's rows, or ``None`` before the dataset step has a result."""
        if not self._fields_read:
            from ftwizard.graders.workbench import data_fields

            result = self.session.dataset.result
            self._fields = data_fields(result.training_file if result else None)
            self._fields_read = True
        return self._fields

    def missing(self) -> list[str]:
        """The row fields the spec reads that the data lacks (empty without data)."""
        fields = self.data_fields()
        text = self.session.grader.spec_text or ""
        return [] if fields is None or not text.strip() else missing_fields(text, fields)

    def example_label(self, name: str, path: Path) -> str:
        """The gallery entry's label: its name, and the fields it needs that the data lacks."""
        label = name.replace("_", " ")
        fields = self.data_fields()
        if fields is None:
            return label
        try:
            needs = missing_fields(path.read_text(encoding="utf-8"), fields)
        except OSError:
            return label
        return f"{label} (needs item.{', item.'.join(needs)})" if needs else label

    def refresh_fit(self) -> None:
        """Say whether the spec fits the data; offer the data's fields for a missing one."""
        fields = self.data_fields()
        missing = self.missing()
        note = self.query_one("#grader-fit", Static)
        row = self.query_one("#grader-map-row")
        if fields is None or not missing:
            note.update("")
            note.display = row.display = False
            return
        note.display = True
        known = ", ".join(field_choices(fields))
        note.update(
            Text(
                f"This grader reads item.{missing[0]}, which your data does not have (its "
                f"fields: {known}). Choose the field to read instead:",
                style="yellow",
            )
        )
        choices = tuple(field_choices(fields))
        if choices != self._map_choices:
            self._map_choices = choices
            self.query_one("#grader-map-field", Select).set_options((c, c) for c in choices)
        row.display = True

    def map_missing_field(self, field: str) -> None:
        """Read ``field`` wherever the spec reads the first missing field."""
        missing = self.missing()
        if not missing:
            return
        text = map_field(self.session.grader.spec_text or "", missing[0], field)
        self.set_spec_text(text)
        # Ready for the next missing field, which may want the same choice.
        self.query_one("#grader-map-field", Select).clear()
        self.notify(f"The grader now reads item.{field} instead of item.{missing[0]}.")

    if TYPE_CHECKING:  # provided by the editing and testing mixins of GraderScreen

        def set_spec_text(self, text: str, *, journal: bool = True) -> None: ...

        def fill_from_spec(self, text: str) -> None: ...

        def _check(self) -> bool: ...

    # Loading a file -------------------------------------------------------------------------

    def browse_grader(self) -> None:
        """Open the file picker; the chosen path goes into ``#grader-file`` and is loaded."""
        self.app.push_screen(FilePickerScreen(), self._picked_grader)

    def _picked_grader(self, path: Path | None) -> None:
        if path is not None:
            self.query_one("#grader-file", Input).value = str(path)
            self.load_grader_file()

    def load_grader_file(self) -> None:
        """Load the file named in ``#grader-file`` as the spec, and check it against the data."""
        from ftwizard.graders.workbench import read_spec_file

        raw = self.query_one("#grader-file", Input).value.strip()
        if not raw:
            self.notify("Type the grader file's path, or Browse.", severity="warning")
            return
        # The path, then the press: what a replay repeats. The spec it loads is not journaled
        # again: the replay loads it from the same file.
        self.wizard.journal({"set": {"grader-file": raw}}, screen=self.screen_name)
        self.wizard.journal({"press": "grader-load"}, screen=self.screen_name)
        problems = self.query_one("#grader-problems", Static)
        try:
            text = read_spec_file(raw)
        except FtwizardError as exc:
            problems.update(Text(str(exc), style="red"))
            self.notify(str(exc), title="Cannot load the grader", severity="error")
            return
        self.fill_from_spec(text)
        self.set_spec_text(text, journal=False)
        self.notify(f"Loaded {raw}.")
        self._check()
