"""A topic hierarchy for a dataset, offline: from a field, or from keywords in the text.

Without a field, topics come from keyword statistics in three streaming passes (no network, no
model): document frequencies; each example's most distinctive keyword, whose most common values
become the top-level topics; then each example is assigned to a topic and, within it, to a
subtopic by its next most distinctive keyword. Labels are the topic keyword plus the words that
most often come with it, so a person can read them ("nest · eggs · build").
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ftwizard.datasets.fields import field_value
from ftwizard.datasets.formats import DatasetFormat, detect_example_format
from ftwizard.datasets.loading import SourceKind, iter_records

OTHER = "other"
_WORD = re.compile(r"[a-z][a-z'-]{2,}")
_MAX_VOCAB = 200_000
_STOPWORD_TEXT = """
    the and for are but not you your yours with this that these those from have has had was
    were will would can could should shall may might must what which who whom whose when where
    why how all any both each few more most other some such only own same than too very just
    into over under again further then once here there about above below between through during
    before after out off upon its it's our ours their theirs them they she her hers him his
    himself herself itself myself yourself themselves ourselves also been being does did doing
    done get got make made use used using like one two three many much well even ever every
    because although however while whether either neither nor yet please thanks thank hello
    i'm i've i'd you're don't can't won't isn't aren't wasn't let let's say said tell told
    give want need know think see way new now time answer question questions answers user
    assistant system example following based given provide explain help describe write
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


class Topic(BaseModel):
    """One node of the hierarchy: ``id`` like ``t2`` or ``t2.1``, a readable ``label``."""

    id: str
    label: str
    keywords: list[str] = Field(default_factory=list)
    count: int = 0
    children: list[Topic] = Field(default_factory=list)


class TopicTree(BaseModel):
    """The topics of a dataset and how many examples each holds."""

    source: str
    """``field:<name>`` when read from a field, ``keywords`` when computed from the text."""
    total: int = 0
    topics: list[Topic] = Field(default_factory=list)
    idf: dict[str, float] = Field(default_factory=dict)

    def assign(self, data: Any) -> tuple[str, str | None]:
        """The (topic id, subtopic id) of one example, by the same rule that built the tree."""
        if self.source.startswith("field:"):
            value = _field_text(data, self.source.removeprefix("field:"))
            parts = _split_path(value)
            for topic in self.topics:
                if topic.label == parts[0]:
                    for child in topic.children:
                        if len(parts) > 1 and child.label == parts[1]:
                            return topic.id, child.id
                    return topic.id, None
            return OTHER, None
        words = Counter(words_of(example_text(data)))
        ranked = [t for t in self.topics if t.id != OTHER]
        keyword_topic = {w: i for i, t in enumerate(ranked) for w in t.keywords}
        best = _best_cluster(words, keyword_topic, self.idf, [t.keywords[0] for t in ranked])
        if best is None:
            return OTHER, None
        topic = ranked[best]
        sub = _best(words, {c.keywords[0] for c in topic.children}, self.idf)
        child = next((c.id for c in topic.children if c.keywords[0] == sub), None)
        return topic.id, child


def words_of(text: str) -> list[str]:
    """Lower-cased content words of ``text`` (no stopwords, at least three letters)."""
    return [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]


def example_text(data: Any) -> str:
    """The text that says what an example is about: its user turns (or prompt)."""
    if not isinstance(data, dict):
        return ""
    fmt = detect_example_format(data)
    texts: list[str] = []
    if fmt in (DatasetFormat.GEMINI, DatasetFormat.GEMINI_PREFERENCE):
        for turn in data.get("contents") or []:
            if isinstance(turn, dict) and turn.get("role") == "user":
                texts += [p.get("text", "") for p in turn.get("parts") or [] if isinstance(p, dict)]
    elif fmt in (DatasetFormat.DPO,):
        texts += _user_texts((data.get("input") or {}).get("messages"))
    elif fmt in (DatasetFormat.PROMPT_COMPLETION, DatasetFormat.TRL_DPO, DatasetFormat.PROMPT_ONLY):
        prompt = data.get("prompt")
        texts += [prompt] if isinstance(prompt, str) else _user_texts(prompt)
    else:
        texts += _user_texts(data.get("messages"))
    return "\n".join(t for t in texts if isinstance(t, str))


def _user_texts(messages: Any) -> list[str]:
    if not isinstance(messages, list):
        return []
    out = []
    for m in messages:
        if isinstance(m, dict) and m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, str):
                out.append(content)
            elif isinstance(content, list):
                out += [p.get("text", "") for p in content if isinstance(p, dict)]
    return out


def _best(
    words: Counter[str], keys: Collection[str] | Mapping[str, Any], idf: Mapping[str, float]
) -> str | None:
    best, best_score = None, 0.0
    for word, tf in words.items():
        if word in keys:
            score = tf * idf.get(word, 0.0)
            if score > best_score or (score == best_score and best is not None and word < best):
                best, best_score = word, score
    return best


def _field_text(data: Any, field: str) -> str:

    value = field_value(data, field)
    if value is None:
        return OTHER
    return value if isinstance(value, str) else str(value)


def _split_path(value: str) -> list[str]:
    parts = [p.strip() for p in re.split(r"\s*(?:/|>|::)\s*", value) if p.strip()]
    return parts or [OTHER]


def _records(
    path: Path, mapping: Mapping[str, str] | None, kind: SourceKind | None
) -> Iterator[Any]:
    for rec in iter_records(path, kind=kind, mapping=mapping, on_error="skip"):
        yield rec.data


def topics_from_field(
    path: str | Path,
    field: str,
    *,
    mapping: Mapping[str, str] | None = None,
    kind: SourceKind | None = None,
) -> TopicTree:
    """Topics read from a (dotted) field; ``"a / b"`` or ``"a > b"`` values make two levels."""
    counts: Counter[str] = Counter()
    sub_counts: dict[str, Counter[str]] = defaultdict(Counter)
    total = 0
    for data in _records(Path(path), mapping, kind):
        total += 1
        parts = _split_path(_field_text(data, field))
        counts[parts[0]] += 1
        if len(parts) > 1:
            sub_counts[parts[0]][parts[1]] += 1
    topics = []
    for i, (name, n) in enumerate(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])), 1):
        children = [
            Topic(id=f"t{i}.{j}", label=sub, count=m)
            for j, (sub, m) in enumerate(
                sorted(sub_counts[name].items(), key=lambda kv: (-kv[1], kv[0])), 1
            )
        ]
        topics.append(Topic(id=f"t{i}", label=name, count=n, children=children))
    return TopicTree(source=f"field:{field}", total=total, topics=topics)


def compute_topics(
    path: str | Path,
    *,
    max_topics: int = 8,
    max_subtopics: int = 5,
    mapping: Mapping[str, str] | None = None,
    kind: SourceKind | None = None,
    field: str | None = None,
) -> TopicTree:
    """The topic hierarchy of a dataset: from ``field`` when given, else from keywords."""
    if field:
        return topics_from_field(path, field, mapping=mapping, kind=kind)
    src = Path(path)
    return build_keyword_topics(
        lambda: _records(src, mapping, kind), max_topics=max_topics, max_subtopics=max_subtopics
    )


def build_keyword_topics(
    examples: Callable[[], Iterable[Any]], *, max_topics: int = 8, max_subtopics: int = 5
) -> TopicTree:
    """Keyword topics over ``examples()`` (called once per pass, so it can re-read a file).

    Candidate keywords are the most frequent words found in 1-50% of examples; keywords that
    appear together are merged (average-linkage on co-occurrence) into topics; each keyword of a
    topic is one of its subtopics.
    """
    df: Counter[str] = Counter()
    total = 0
    for data in examples():
        total += 1
        df.update(set(words_of(example_text(data))))
        if len(df) > _MAX_VOCAB:
            # words seen once so far cannot become topics of a large file; drop them
            df = Counter({w: c for w, c in df.items() if c > 1})
    if total == 0:
        return TopicTree(source="keywords")
    low = max(2, math.ceil(total * 0.01))
    high = max(low, math.floor(total * 0.5))
    in_range = sorted(
        ((w, c) for w, c in df.items() if low <= c <= high), key=lambda kv: (-kv[1], kv[0])
    )
    candidates = [w for w, _ in in_range[: max_topics * _CANDIDATES_PER_TOPIC]]
    idf = {w: math.log(total / df[w]) + 1.0 for w in candidates}
    del df, in_range

    pair: Counter[tuple[str, str]] = Counter()
    single: Counter[str] = Counter()
    for data in examples():
        present = sorted({w for w in words_of(example_text(data)) if w in idf})
        single.update(present)
        for i, a in enumerate(present):
            for b in present[i + 1 :]:
                pair[(a, b)] += 1
    clusters = _merge_keywords(candidates, single, pair)

    keyword_topic = {w: i for i, cluster in enumerate(clusters) for w in cluster}
    cluster_names = [cluster[0] for cluster in clusters]
    first: Counter[int] = Counter()
    for data in examples():
        best = _best_cluster(
            Counter(words_of(example_text(data))), keyword_topic, idf, cluster_names
        )
        if best is not None:
            first[best] += 1
    kept = sorted(first, key=lambda i: (-first[i], clusters[i][0]))[:max_topics]
    kept_clusters = [clusters[i] for i in kept]
    keyword_topic = {w: i for i, cluster in enumerate(kept_clusters) for w in cluster}
    names = [cluster[0] for cluster in kept_clusters]

    counts: Counter[int] = Counter()
    sub_counts: dict[int, Counter[str]] = defaultdict(Counter)
    other = 0
    for data in examples():
        words = Counter(words_of(example_text(data)))
        best = _best_cluster(words, keyword_topic, idf, names)
        if best is None:
            other += 1
            continue
        counts[best] += 1
        sub = _best(words, set(kept_clusters[best]), idf)
        if sub is not None:
            sub_counts[best][sub] += 1

    order = sorted(range(len(kept_clusters)), key=lambda i: (-counts[i], kept_clusters[i][0]))
    topics: list[Topic] = []
    for rank, i in enumerate(order, 1):
        cluster = kept_clusters[i]
        children = []
        if len(cluster) > 1:
            subs = sorted(sub_counts[i].items(), key=lambda kv: (-kv[1], kv[0]))[:max_subtopics]
            children = [
                Topic(id=f"t{rank}.{j}", label=w, keywords=[w], count=n)
                for j, (w, n) in enumerate(subs, 1)
            ]
        topics.append(
            Topic(
                id=f"t{rank}",
                label=" · ".join(cluster[:3]),
                keywords=list(cluster),
                count=counts[i],
                children=children,
            )
        )
    if other:
        topics.append(Topic(id=OTHER, label=OTHER, count=other))
    keep = {w for cluster in kept_clusters for w in cluster}
    return TopicTree(
        source="keywords",
        total=total,
        topics=topics,
        idf={w: v for w, v in idf.items() if w in keep},
    )


_CANDIDATES_PER_TOPIC = 6
_MERGE_SIMILARITY = 0.2


def _merge_keywords(
    candidates: list[str], single: Counter[str], pair: Counter[tuple[str, str]]
) -> list[list[str]]:
    """Group keywords that co-occur, by average linkage, most frequent keyword first."""

    def sim(a: str, b: str) -> float:
        key = (a, b) if a < b else (b, a)
        return pair[key] / max(1, min(single[a], single[b]))

    clusters = [[w] for w in candidates if single[w]]
    while len(clusters) > 1:
        best, best_pair = 0.0, None
        for i in range(len(clusters)):
            for j in range(i + 1, len(clusters)):
                score = sum(sim(a, b) for a in clusters[i] for b in clusters[j]) / (
                    len(clusters[i]) * len(clusters[j])
                )
                if score > best:
                    best, best_pair = score, (i, j)
        if best_pair is None or best < _MERGE_SIMILARITY:
            break
        i, j = best_pair
        clusters[i] = sorted(clusters[i] + clusters[j], key=lambda w: (-single[w], w))
        del clusters[j]
    return clusters


def _best_cluster(
    words: Counter[str],
    keyword_topic: Mapping[str, int],
    idf: Mapping[str, float],
    names: Sequence[str],
) -> int | None:
    scores: dict[int, float] = defaultdict(float)
    for word, tf in words.items():
        topic = keyword_topic.get(word)
        if topic is not None:
            scores[topic] += tf * idf[word]
    if not scores:
        return None
    top = max(scores.values())
    # ties go to the topic whose first keyword sorts first, whatever the topics' order
    return min((t for t, v in scores.items() if v == top), key=lambda t: names[t])


def topic_assigner(
    path: str | Path,
    *,
    mapping: Mapping[str, str] | None = None,
    kind: SourceKind | None = None,
    field: str | None = None,
) -> Callable[[Any], str]:
    """A function giving each example its top-level topic id (used to stratify a split)."""
    tree = compute_topics(path, mapping=mapping, kind=kind, field=field)

    def of(data: Any) -> str:
        return tree.assign(data)[0]

    return of
