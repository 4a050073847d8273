"""Write the generated pages of the documentation site into this folder:

- commands.md and configuration.md, from the argparse parser and ingest/config/schema.py;
- index.md, architecture.md and changelog.md, from README.md, ARCHITECTURE.md and CHANGELOG.md
  at the root (their links rewritten for the site), so each text has one source.

    python docs/generate.py            # write what changed
    python docs/generate.py --check    # exit 1 naming the pages that are not current
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
COPIES = {"index.md": "README.md", "architecture.md": "ARCHITECTURE.md", "changelog.md": "CHANGELOG.md"}
NOTE = "<!-- copied from {source} by `python docs/generate.py`; edit that file -->\n\n"


def _site_links(text: str) -> str:
    """Links as they resolve inside docs/: docs/x.md -> x.md, the root files -> their copies."""
    text = re.sub(r"\]\(docs/", "](", text)
    for page, source in COPIES.items():
        text = text.replace(f"]({source})", f"]({page})")
    return text


def pages() -> dict[str, str]:
    sys.path.insert(0, str(ROOT))
    from ingest.cli.reference import pages as reference

    out = dict(reference())
    for page, source in COPIES.items():
        out[page] = NOTE.format(source=source) + _site_links((ROOT / source).read_text(encoding="utf-8"))
    return out


def stale() -> list[str]:
    return [name for name, text in pages().items()
            if not (HERE / name).exists() or (HERE / name).read_text(encoding="utf-8") != text]


def main() -> int:
    if "--check" in sys.argv[1:]:
        names = stale()
        for name in names:
            print(f"docs/{name} is not current: run python docs/generate.py", file=sys.stderr)
        return 1 if names else 0
    for name, text in pages().items():
        path = HERE / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote docs/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
