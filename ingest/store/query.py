"""The search syntax, read once for both stores: words, "phrases", prefix*, AND/OR/NOT, parentheses
(NEAR is read as AND). A word with hyphens, dots or apostrophes (Jong-un, U.S., gold-mine, S.A.) is
the phrase of its parts, as a person means it: FTS5 read ``gold-mine`` as a column filter and
``S.A.`` as a syntax error. A query that cannot be read raises SearchError saying what is wrong
in the user's terms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.store.rows import SearchError

_TOKENS = re.compile(r'"[^"]*"?|\(|\)|[^\s()"]+')
_BARE = re.compile(r"\w+", re.UNICODE)
OPERATORS = ("AND", "OR", "NOT", "NEAR")
HELP = 'words, "a phrase", prefix*, AND, OR, NOT (as in: gold NOT coal) and parentheses are understood'


@dataclass(frozen=True)
class Term:
    words: tuple[str, ...]  # one word, or a phrase's words in order
    prefix: bool = False
    raw: str = ""  # a dotted or hyphenated word as written (lower case, outer punctuation off): "s.a", "jong-un"


Token = Term | str  # a term, an operator ("AND", "OR", "NOT") or a parenthesis


def parse(query: str) -> list[Token]:
    """The query as terms, operators and parentheses, checked: balanced, every operator between two
    operands. Juxtaposed terms are ANDed (no operator is inserted)."""
    out: list[Token] = []
    depth = 0

    def fail(why: str) -> SearchError:
        return SearchError(f"cannot read the query {query!r}: {why}. {HELP[0].upper()}{HELP[1:]}")

    for tok in _TOKENS.findall(query):
        if tok.startswith('"'):
            if len(tok) < 2 or not tok.endswith('"'):
                raise fail('a quote is not closed (end the phrase with ")')
            words = tuple(_BARE.findall(tok[1:-1].lower()))
            if words:
                out.append(Term(words))
        elif tok in ("(", ")"):
            depth += 1 if tok == "(" else -1
            if depth < 0:
                raise fail("a ) has no ( before it")
            if tok == ")" and (not out or out[-1] == "("):
                raise fail("empty parentheses")
            out.append(tok)
        elif tok in OPERATORS:
            op = "AND" if tok == "NEAR" else tok
            if not out or out[-1] in ("(", *OPERATORS):
                raise fail(f"{tok} needs a word before it")
            out.append(op)
        else:
            prefix = tok.endswith("*")
            words = tuple(_BARE.findall(tok.lower()))
            raw = re.sub(r"^\W+|\W+$", "", tok.lower())
            if words:
                out.append(Term(words, prefix, raw if len(words) > 1 and re.fullmatch(r"[\w.\-]+", raw) else ""))
    if depth:
        raise fail("a ( is not closed")
    if out and out[-1] in OPERATORS:
        raise fail(f"{out[-1]} needs a word after it")
    for a, b in zip(out, out[1:], strict=False):
        if a in OPERATORS and b == ")":
            raise fail(f"{a} needs a word after it")
    return out


def fts5(query: str) -> str:
    """The query as an FTS5 MATCH expression (every term quoted: no word is read as syntax)."""
    parts = []
    for tok in parse(query):
        if isinstance(tok, Term):
            parts.append('"' + " ".join(tok.words) + '"' + ("*" if tok.prefix else ""))
        else:
            parts.append(tok)
    return " ".join(parts)
