"""A text's terms as the relevance model counts them: lower-cased word tokens with plurals
folded, the title's words (the first line, when it reads as a title) counted twice."""

from __future__ import annotations

import re

_WORD = re.compile(r"[^\W\d_][\w'’-]*[^\W_]|[^\W\d_]", re.UNICODE)
MAX_TITLE_WORDS = 25


def _fold(token: str) -> str:
    token = token.replace("’", "'")
    if token.endswith("'s"):
        token = token[:-2]
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


def tokens(text: str) -> list[str]:
    """Lower-cased, plural-folded word tokens of ``text``."""
    return [_fold(m) for m in _WORD.findall(text.lower())]


def split_title(text: str) -> tuple[str, str]:
    """(title, body): the first line is a title when it is short and not a sentence."""
    first, _, rest = text.strip().partition("\n")
    first = first.strip()
    words = first.split()
    if rest.strip() and 0 < len(words) <= MAX_TITLE_WORDS and not first.endswith((".", ":", ";", ",")):
        return first, rest
    return "", text


def term_counts(text: str) -> dict[str, int]:
    """Term frequencies of ``text``; title words (see split_title) count twice."""
    title, body = split_title(text)
    tf: dict[str, int] = {}
    for tok in tokens(body):
        tf[tok] = tf.get(tok, 0) + 1
    for tok in tokens(title):
        tf[tok] = tf.get(tok, 0) + 2
    return tf
