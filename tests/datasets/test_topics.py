"""Topics are computed offline with readable labels, or read from a field, and drive splits."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

from ftwizard.datasets.splitting import split_file
from ftwizard.datasets.topics import OTHER, compute_topics

THEMES = {
    "nest": ["nest", "eggs", "build", "twigs", "chicks"],
    "song": ["song", "dawn", "call", "chorus", "melody"],
    "migration": ["migration", "winter", "south", "flight", "route"],
}
FILLER = ["bird", "robin", "wren", "garden"]


def themed_file(path: Path, per_theme: tuple[int, int, int] = (120, 60, 30)) -> list[str]:
    rng = random.Random(3)
    lines, truth = [], []
    for theme, n in zip(THEMES, per_theme, strict=True):
        for _ in range(n):
            words = rng.choices(THEMES[theme], k=6) + rng.choices(FILLER, k=3)
            lines.append(
                json.dumps(
                    {
                        "messages": [
                            {"role": "system", "content": "You are a birding guide."},
                            {"role": "user", "content": "Tell me about " + " ".join(words)},
                            {"role": "assistant", "content": "Gladly."},
                        ]
                    }
                )
            )
            truth.append(theme)
    order = list(range(len(lines)))
    rng.shuffle(order)
    path.write_text("\n".join(lines[i] for i in order) + "\n")
    return [truth[i] for i in order]


def test_keyword_topics_recover_the_themes_with_readable_labels(tmp_path: Path) -> None:
    path = tmp_path / "birds.jsonl"
    truth = themed_file(path)
    tree = compute_topics(path)
    assert tree.total == 210
    top = [t for t in tree.topics if t.id != OTHER]
    assert [t.count for t in top] == [120, 60, 30]
    for topic, theme in zip(top, THEMES, strict=True):
        assert set(topic.keywords) == set(THEMES[theme])
        assert " · " in topic.label
        assert all(w in THEMES[theme] for w in topic.label.split(" · "))
        assert sum(c.count for c in topic.children) == topic.count
    # assigning an example reproduces the counts of the tree
    examples = [json.loads(x) for x in path.read_text().splitlines()]
    assigned = Counter(tree.assign(e)[0] for e in examples)
    assert assigned == {t.id: t.count for t in top}
    by_theme = {
        theme: {tree.assign(e)[0] for e, th in zip(examples, truth, strict=True) if th == theme}
        for theme in THEMES
    }
    assert all(len(ids) == 1 for ids in by_theme.values())


def test_topics_from_a_field_with_two_levels(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    cats = ["birds/owls"] * 5 + ["birds/hawks"] * 3 + ["plants"] * 2
    path.write_text(
        "\n".join(json.dumps({"prompt": "p", "completion": "c", "cat": c}) for c in cats)
    )
    tree = compute_topics(path, field="cat")
    assert [(t.label, t.count) for t in tree.topics] == [("birds", 8), ("plants", 2)]
    assert [(c.label, c.count) for c in tree.topics[0].children] == [("owls", 5), ("hawks", 3)]
    assert tree.assign({"cat": "birds/hawks"}) == ("t1", "t1.2")


def test_split_stratified_by_computed_topic_keeps_each_topic_share(tmp_path: Path) -> None:
    path = tmp_path / "birds.jsonl"
    themed_file(path)
    result = split_file(path, tmp_path / "out", val=0.1, seed=5, stratify="topic")
    assert result.validation_examples == 21
    assert sorted(v["validation"] for v in result.strata.values()) == [3, 6, 12]


def test_no_text_gives_an_empty_tree_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    assert compute_topics(path).topics == []
