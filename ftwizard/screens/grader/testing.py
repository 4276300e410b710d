"""The grader step's test panel: check the spec, grade samples, show them, confirm."""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual import work
from textual.widgets import DataTable, Static

from ftwizard.errors import FtwizardError
from ftwizard.graders.workbench import spec_digest
from ftwizard.screens.grader.specs import parse_spec
from ftwizard.screens.step import StepScreen
from ftwizard.session import Backend, GraderTest, Session
from ftwizard.widgets.text import one_line


class SampleTestMixin(StepScreen):
    """Checks the spec, grades a few samples in a thread, and records the confirmation."""

    busy: bool
    _tested_records: int

    def _data_path(self) -> str | None:
        result = self.session.dataset.result
        return result.training_file if result else None

    def _check(self) -> bool:
        """Validate the spec text; show every problem with its line. True when it is usable."""
        from ftwizard.graders.workbench import check_spec

        text = self.session.grader.spec_text or ""
        target = self.query_one("#grader-problems", Static)
        try:
            _, problems, _path = check_spec(
                text,
                out_dir=self.wizard.store.artifacts_dir(self.session.id),
                data_path=self._data_path(),
            )
        except FtwizardError as exc:
            target.update(Text(str(exc), style="red"))
            return False
        if not problems:
            target.update(Text("The grader is valid.", style="green"))
            return True
        lines = Text()
        for problem in problems:
            lines.append(f"✗ {problem.to_error()}\n", style="red")
        target.update(lines)
        return False

    def _start_test(self, skip: int) -> None:
        if self.busy:
            return
        self.job_started("grader-test")
        if not self._check():
            self.job_ended("grader-test", "failed")
            return
        data_path = self._data_path()
        if data_path is None:
            self.notify("Check the dataset step first: samples come from it.", severity="warning")
            self.job_ended("grader-test", "failed")
            return
        self.busy = True
        self.query_one("#grader-source-label", Static).update("Grading samples...")
        self.refresh_frame()
        self._run_test(self.session.model_copy(deep=True), data_path, skip)

    @work(thread=True, exclusive=True, group="grader", exit_on_error=False)
    def _run_test(self, snapshot: Session, data_path: str, skip: int) -> None:
        from ftwizard.errors import InputError
        from ftwizard.graders.export_openai import to_openai_grader
        from ftwizard.graders.judges import judge_for
        from ftwizard.graders.loading import parse_grader
        from ftwizard.graders.workbench import base_model_generator, read_items, run_sample_test
        from ftwizard.providers.models import close_provider
        from ftwizard.providers.openai.graders import can_validate_online, validate_grader_online

        text = snapshot.grader.spec_text or ""
        grader = snapshot.grader

        async def run() -> GraderTest:
            spec = parse_grader(parse_spec(text))
            if snapshot.task.backend is Backend.openai and can_validate_online():
                # The grader will become an RFT reward on OpenAI: ask OpenAI too.
                objections = await validate_grader_online(to_openai_grader(spec))
                if objections:
                    raise InputError("OpenAI rejects this grader: " + "; ".join(objections))
            judge = judge_for(spec, base_url=grader.judge_base_url)
            items, lines = read_items(data_path, skip=skip)
            if not items:
                raise FtwizardError("no more records to test on")
            generator, model, why_not = base_model_generator(
                snapshot.task.backend, snapshot.task.base_model
            )
            try:
                return await run_sample_test(
                    spec,
                    text,
                    items,
                    lines,
                    generator=generator,
                    model=model,
                    judge=judge,
                    fallback_reason=why_not,
                )
            finally:
                for provider in (generator, judge):
                    if provider is not None:
                        await close_provider(provider)

        try:
            test = asyncio.run(run())
        except FtwizardError as exc:
            self.app.call_from_thread(self._test_failed, str(exc))
            return
        except Exception as exc:  # a fault must reach the screen, not end the worker silently
            self.app.call_from_thread(self._test_failed, f"{type(exc).__name__}: {exc}")
            return
        self.app.call_from_thread(self._tested, test, skip)

    def _test_failed(self, message: str) -> None:
        self.busy = False
        self.query_one("#grader-source-label", Static).update(Text(message, style="red"))
        self.notify(message, title="Test did not run", severity="error")
        self.job_ended("grader-test", "failed")
        self.refresh_frame()
        self.query_one("#grader-source-label").scroll_visible(animate=False)

    def _tested(self, test: GraderTest, skip: int) -> None:
        self.busy = False
        self._tested_records = skip + len(test.rows)
        self.session.grader.test = test
        self.wizard.save_session()
        self._show_test(test)
        self.job_ended("grader-test", "done")
        self.refresh_frame()
        # The scores and the question they ask, in view with the focus on its answer.
        self.show_outcome(
            self.query_one("#grader-source-label"), self.query_one("#grader-looks-right")
        )

    def _show_test(self, test: GraderTest) -> None:
        self.query_one("#grader-source-label", Static).update(
            f"Graded {len(test.rows)} samples: {test.source_label}"
        )
        table = self.query_one("#grader-results", DataTable)
        table.clear()
        for row in test.rows:
            notes = row.error or row.notes
            table.add_row(
                row.record,
                Text(f"{row.score:.2f}", style="green" if row.score >= 0.5 else "red"),
                one_line(row.expected, 24) if row.expected is not None else "-",
                one_line(row.output, 40),
                one_line(notes, 60),
            )
        errors = f", {test.n_errors} error(s)" if test.n_errors else ""
        self.query_one("#grader-mean", Static).update(f"Average score {test.mean:.2f}{errors}")

    def _confirm(self) -> None:
        text = self.session.grader.spec_text or ""
        digest = spec_digest(text)

        def apply(session: Session) -> bool:
            if session.grader.confirmed_digest == digest:
                return False
            session.grader.confirmed_digest = digest
            return True

        if apply(self.session):
            self.wizard.journal({"press": "grader-looks-right"}, screen=self.screen_name)
        self.refresh_frame()
        # Confirmed: what comes next is the next step.
        self.query_one("#next").focus()
