"""Model output shown in a table cell: one line, no control characters, cut to fit."""

from ftwizard.widgets.text import one_line


def test_control_characters_and_newlines_never_reach_a_cell() -> None:
    assert one_line("bil\x0fling\nis\t here", 40) == "bil�ling is here"


def test_long_text_is_cut_with_an_ellipsis() -> None:
    assert one_line("a" * 10, 5) == "aaaa…"
    assert one_line(None, 5) == ""
