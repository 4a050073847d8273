""""Did you mean" for the command line, as the config already has for its keys: a mistyped command
(`ingest pol`), subcommand (`ingest feeds ad`) or option (`ingest mark p3 --relavant`, `ingest serve
--port 9000`) is named with the nearest real one, before argparse answers with a usage line that
does not name the typo ("one of the arguments --relevant --irrelevant is required")."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from difflib import get_close_matches

# options people bring from other tools, and what this one calls them
KNOWN_AS = {"--port": "--listen", "--host": "--listen", "--bind": "--listen", "--address": "--listen",
            "--verbose": "--log-level DEBUG", "--debug": "--log-level DEBUG", "--quiet": "--log-level WARNING"}


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser] | None:
    for action in parser._actions:  # argparse keeps subparsers as an action; no public accessor
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return None


def _options(parser: argparse.ArgumentParser) -> tuple[set[str], set[str]]:
    """(every option string, those that take a value)."""
    every: set[str] = set()
    valued: set[str] = set()
    for action in parser._actions:
        every.update(action.option_strings)
        if action.nargs != 0 and action.option_strings:
            valued.update(action.option_strings)
    return every, valued


def hint(parser: argparse.ArgumentParser, argv: Sequence[str]) -> str | None:
    """A sentence naming the first mistyped command or option in ``argv`` and the nearest real one,
    or None when there is none (argparse then says what it says)."""
    words: list[str] = ["ingest"]
    current = parser
    known, valued = _options(parser)
    skip = False
    for tok in argv:
        if skip:
            skip = False
            continue
        if tok == "--":
            break
        if tok.startswith("-") and len(tok) > 1 and not tok[1:2].isdigit():
            name = tok.split("=", 1)[0]
            if name in known:
                skip = name in valued and "=" not in tok
                continue
            if not name.startswith("--"):
                continue
            return _option_hint(" ".join(words), name, known)
        commands = _commands(current)
        if commands is None:
            continue  # a positional argument of the command
        if tok in commands:
            current = commands[tok]
            words.append(tok)
            more, more_valued = _options(current)
            known, valued = known | more, valued | more_valued
            continue
        close = get_close_matches(tok, list(commands), n=1, cutoff=0.6)
        if close:
            return (f"{' '.join(words)}: no command {tok!r}; did you mean `{' '.join(words + [close[0]])}`? "
                    f"(`{' '.join(words)} --help` lists them)")
        return None
    return None


def _option_hint(command: str, name: str, known: set[str]) -> str:
    if name in KNOWN_AS and KNOWN_AS[name].split()[0] in known:
        return f"{command}: no option {name}; did you mean {KNOWN_AS[name]}? (`{command} --help` lists them)"
    close = get_close_matches(name, sorted(o for o in known if o.startswith("--")), n=1, cutoff=0.6)
    if close:
        return f"{command}: no option {name}; did you mean {close[0]}? (`{command} --help` lists them)"
    return f"{command}: no option {name} (`{command} --help` lists them)"
