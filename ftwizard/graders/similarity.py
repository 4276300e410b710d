"""``text_similarity`` metrics, computed by the libraries practitioners already trust.

fuzzy_match = ``rapidfuzz.fuzz.ratio / 100``; bleu = NLTK ``sentence_bleu`` (4-gram, smoothing
method 1, so short answers do not collapse to 0); gleu = NLTK ``sentence_gleu``; meteor = NLTK
``meteor_score`` (needs the WordNet corpus); rouge_N / rouge_l = ``rouge-score`` F-measure.
Text is split into words and punctuation; case is kept. OpenAI does not publish its exact
settings, so scores near a pass threshold can differ slightly from OpenAI's.
"""

from __future__ import annotations

import importlib.util
import re
import warnings
from functools import cache
from typing import Any

from ftwizard.errors import InputError

_WORD_RE = re.compile(r"\w+|[^\w\s]")

METEOR_MISSING = (
    "the meteor metric needs NLTK's WordNet data, which is not installed (and cannot be "
    "downloaded here); install it where you have network access with "
    "`python -m nltk.downloader wordnet omw-1.4`, or choose another evaluation_metric"
)
COSINE_LOCAL = (
    "the cosine metric embeds text with OpenAI's text-embedding-3-large and is available in "
    "OpenAI evals only; it cannot run locally or in fine-tuning. Choose fuzzy_match, bleu, "
    "gleu, rouge_* or meteor, or a score_model judge"
)


class MetricUnavailable(InputError):
    """A similarity metric that cannot run on this machine, with what to do instead."""


def tokens(text: str) -> list[str]:
    """Words and punctuation marks, in order."""
    return _WORD_RE.findall(text)


@cache
def _rouge_scorer(key: str) -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer([key], use_stemmer=False)


def wordnet_available() -> bool:
    """Whether NLTK can find the WordNet corpus that meteor needs."""
    import nltk

    try:
        nltk.data.find("corpora/wordnet")
    except LookupError:
        try:
            nltk.data.find("corpora/wordnet.zip")
        except LookupError:
            return False
    return True


_PACKAGES = {
    "fuzzy_match": ("rapidfuzz", "rapidfuzz"),
    "bleu": ("nltk", "nltk"),
    "gleu": ("nltk", "nltk"),
    "meteor": ("nltk", "nltk"),
}


def check_metric(metric: str) -> None:
    """Raise :class:`MetricUnavailable` when ``metric`` cannot run here."""
    module, package = _PACKAGES.get(metric, ("rouge_score", "rouge-score"))
    if metric != "cosine" and importlib.util.find_spec(module) is None:
        raise MetricUnavailable(
            f"the {metric} metric needs the {package} package; install it with "
            f"`pip install {package}`",
            field="evaluation_metric",
        )
    if metric == "cosine":
        raise MetricUnavailable(COSINE_LOCAL, field="evaluation_metric")
    if metric == "meteor" and not wordnet_available():
        raise MetricUnavailable(METEOR_MISSING, field="evaluation_metric")


def similarity(metric: str, text: str, reference: str) -> float:
    """The ``metric`` score of ``text`` against ``reference``, between 0 and 1."""
    if metric == "fuzzy_match":
        from rapidfuzz import fuzz

        return fuzz.ratio(text, reference) / 100.0
    if metric.startswith("rouge_"):
        key = "rougeL" if metric == "rouge_l" else f"rouge{metric[-1]}"
        # rouge-score takes (target, prediction): the reference comes first.
        return float(_rouge_scorer(key).score(reference, text)[key].fmeasure)
    hyp, ref = tokens(text), tokens(reference)
    if metric == "bleu":
        from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

        if not hyp or not ref:
            return 0.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(sentence_bleu([ref], hyp, smoothing_function=SmoothingFunction().method1))
    if metric == "gleu":
        from nltk.translate.gleu_score import sentence_gleu

        return float(sentence_gleu([ref], hyp)) if hyp and ref else 0.0
    if metric == "meteor":
        check_metric("meteor")
        from nltk.translate.meteor_score import meteor_score

        return float(meteor_score([ref], hyp))
    check_metric(metric)
    raise ValueError(f"unknown evaluation_metric '{metric}'")
