"""The dataset screen's Prepare tab: format conversion, a held-out split, transforms."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Checkbox, Input, Label, Switch

from ftwizard.screens.dataset.choices import set_choice, set_transform
from ftwizard.screens.step import StepScreen
from ftwizard.session import DatasetChoice

# The bounds of DatasetChoice.max_pixels (and of local training's): one 28-pixel patch square
# to 16384 of them.
MIN_PIXELS = 28 * 28
MAX_PIXELS = 16384 * 28 * 28

_TRANSFORM_FLAGS: dict[str, str] = {
    "transform-drop-duplicates": "drop_duplicates",
    "transform-fold-turns": "fold_assistant_turns",
    "transform-drop-system": "drop_system_prompt",
}


def _transform_kinds(choice: DatasetChoice) -> dict[str, dict[str, Any]]:
    return {spec["kind"]: spec for spec in choice.transforms}


class PrepareTab(StepScreen):
    """The Prepare tab's part of :class:`DatasetScreen` (a mixin of it)."""

    def compose_prepare(self) -> ComposeResult:
        """Conversion, the held-out split and the transforms."""
        with Horizontal(classes="row"):
            yield Switch(id="convert-format")
            yield Label("Convert to the format the backend trains on", classes="switch")
        yield Label("Hold out for validation (fraction or count)", classes="field-label")
        with Horizontal(classes="row"):
            yield Input(placeholder="e.g. 0.1 or 50; empty = no split", id="split-val")
            yield Input(placeholder="seed", id="split-seed", type="integer")
            yield Input(placeholder="stratify by field (optional)", id="split-stratify")
        yield Label("Transforms", classes="field-label")
        yield Checkbox("Drop duplicate examples", id="transform-drop-duplicates")
        yield Checkbox("Fold earlier assistant turns into user messages", id="transform-fold-turns")
        yield Checkbox("Drop the system prompt", id="transform-drop-system")
        yield Input(placeholder="replace the system prompt with…", id="transform-system")
        yield Input(placeholder="append a stop marker to inputs, e.g. ###", id="transform-stop")
        yield Input(
            placeholder="keep only the top k items of list answers (k)",
            id="transform-top-k",
            type="integer",
        )
        yield Label(
            "Image pixel budget (max_pixels; Qwen-VL models, also used by local training)",
            classes="field-label",
        )
        yield Input(
            placeholder=f"pixels per image, {MIN_PIXELS}..{MAX_PIXELS}; empty = the model's",
            id="max-pixels",
            type="integer",
        )

    def _mount_prepare(self, choice: DatasetChoice) -> None:
        self.query_one("#convert-format", Switch).value = choice.convert
        self.query_one("#split-val", Input).value = choice.split_val or ""
        self.query_one("#split-seed", Input).value = str(choice.split_seed)
        self.query_one("#split-stratify", Input).value = choice.split_stratify or ""
        kinds = _transform_kinds(choice)
        for widget_id, kind in _TRANSFORM_FLAGS.items():
            self.query_one(f"#{widget_id}", Checkbox).value = kind in kinds
        self.query_one("#transform-system", Input).value = (
            kinds.get("replace_system_prompt", {}).get("text") or ""
        )
        self.query_one("#transform-stop", Input).value = (
            kinds.get("append_stop_marker", {}).get("marker") or ""
        )
        top_k = kinds.get("top_k", {}).get("k")
        self.query_one("#transform-top-k", Input).value = str(top_k) if top_k else ""
        self.query_one("#max-pixels", Input).value = (
            str(choice.max_pixels) if choice.max_pixels else ""
        )

    def _prepare_input_changed(self, widget_id: str, value: str) -> bool:
        """Apply a Prepare input's text; False when ``widget_id`` is none of them."""
        if widget_id == "split-val":
            self.decide(widget_id, value, lambda s: set_choice(s, split_val=value or None))
        elif widget_id == "split-seed" and value.lstrip("-").isdigit():
            seed = int(value)
            self.decide(widget_id, seed, lambda s: set_choice(s, split_seed=seed))
        elif widget_id == "split-stratify":
            self.decide(widget_id, value, lambda s: set_choice(s, split_stratify=value or None))
        elif widget_id == "transform-system":
            spec = {"kind": "replace_system_prompt", "text": value} if value else None
            self.decide(widget_id, value, lambda s: set_transform(s, "replace_system_prompt", spec))
        elif widget_id == "transform-stop":
            spec = {"kind": "append_stop_marker", "marker": value} if value else None
            self.decide(widget_id, value, lambda s: set_transform(s, "append_stop_marker", spec))
        elif widget_id == "transform-top-k":
            spec = (
                {"kind": "top_k", "k": int(value)} if value.isdigit() and int(value) > 0 else None
            )
            self.decide(widget_id, value, lambda s: set_transform(s, "top_k", spec))
        elif widget_id == "max-pixels":
            if value and not (value.isdigit() and MIN_PIXELS <= int(value) <= MAX_PIXELS):
                return True  # half-typed or out of range: the saved budget stands
            pixels = int(value) if value else None
            self.decide(widget_id, value, lambda s: set_choice(s, max_pixels=pixels))
        else:
            return False
        return True

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        kind = _TRANSFORM_FLAGS.get(event.checkbox.id or "")
        if kind is None:
            return
        event.stop()
        spec = {"kind": kind} if event.value else None
        widget_id = event.checkbox.id or ""
        self.decide(widget_id, event.value, lambda s: set_transform(s, kind, spec))
