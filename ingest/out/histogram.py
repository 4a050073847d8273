"""The model at a glance: the window's scores as a small histogram, drawn on the server as inline SVG.

The threshold is a vertical line; the seeds are marked above the bars, the user's verdicts below the
axis (relevant and not), so a user sees whether the topic separates from the stream and where the
doubtful pages lie. Numbers only go into the drawing (no text of a page), and it needs no script:
the web view's Content-Security-Policy stays as it is (presentation attributes, no style attribute).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ingest.judge.model import Scored

WIDTH, HEIGHT = 480, 120
LEFT, RIGHT, TOP, AXIS = 8, 8, 22, 92  # plot area: x from LEFT to WIDTH - RIGHT, bars from AXIS up to TOP
BINS = 40


@dataclass(frozen=True)
class Distribution:
    """What the drawing shows: the window's scores under the current model, and the marks."""

    scores: Sequence[float]
    threshold: float
    seeds: Sequence[float] = ()
    relevant: Sequence[float] = ()  # scores of the pages judged relevant
    irrelevant: Sequence[float] = ()

    @property
    def top(self) -> float:
        """The right end of the axis: 1 for probabilities, else a little above the largest score."""
        values = [*self.scores, *self.seeds, self.threshold]
        hi = max(values, default=1.0)
        return 1.0 if hi > 0.7 else max(0.05, math.ceil(hi * 11) / 10)


def _x(value: float, top: float) -> float:
    span = WIDTH - LEFT - RIGHT
    return LEFT + span * min(max(value / top, 0.0), 1.0)


def svg(d: Distribution) -> str:
    """The histogram as an ``<svg>`` element (a string of numbers and fixed words only)."""
    top = d.top
    counts = [0] * BINS
    for s in d.scores:
        counts[min(int(max(s, 0.0) / top * BINS), BINS - 1)] += 1
    # square-root heights: a topic's few pages stay visible beside the stream's bulk near 0
    peak = math.sqrt(max(counts, default=0)) or 1.0
    bar = (WIDTH - LEFT - RIGHT) / BINS
    above = sum(1 for s in d.scores if s >= d.threshold)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="histogram" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-labelledby="hist-title">',
             f'<title id="hist-title">Scores of the {len(d.scores)} pages of the window: {above} at or above the '
             f'threshold {d.threshold:.3f}; seeds marked above, your verdicts below</title>']
    for i, c in enumerate(counts):
        if c:
            h = (AXIS - TOP) * math.sqrt(c) / peak
            fill = "#65a30d" if (i + 0.5) * top / BINS >= d.threshold else "#9ca3af"
            parts.append(f'<rect x="{LEFT + i * bar + 0.5:.1f}" y="{AXIS - h:.1f}" width="{bar - 1:.1f}" '
                         f'height="{h:.1f}" fill="{fill}"><title>{c} page(s) scoring '
                         f'{i * top / BINS:.2f}-{(i + 1) * top / BINS:.2f}</title></rect>')
    parts.append(f'<line x1="{LEFT}" y1="{AXIS}" x2="{WIDTH - RIGHT}" y2="{AXIS}" stroke="#374151"/>')
    tx = _x(d.threshold, top)
    parts.append(f'<line x1="{tx:.1f}" y1="{TOP - 8}" x2="{tx:.1f}" y2="{AXIS + 14}" stroke="#dc2626" '
                 f'stroke-dasharray="3 2"><title>threshold {d.threshold:.3f}</title></line>')
    parts.append(f'<text x="{min(tx + 3, WIDTH - 70):.1f}" y="{TOP - 10}" font-size="10" fill="#dc2626">'
                 f'threshold {d.threshold:.3f}</text>')
    for s in d.seeds:
        x = _x(s, top)
        parts.append(f'<path d="M{x - 4:.1f} {TOP - 6} L{x + 4:.1f} {TOP - 6} L{x:.1f} {TOP} Z" fill="#2563eb">'
                     f'<title>a seed: {s:.3f}</title></path>')
    for s, colour, word in [(s, "#16a34a", "relevant") for s in d.relevant] + \
                           [(s, "#b91c1c", "not relevant") for s in d.irrelevant]:
        x = _x(s, top)
        parts.append(f'<line x1="{x:.1f}" y1="{AXIS + 3}" x2="{x:.1f}" y2="{AXIS + 11}" stroke="{colour}" '
                     f'stroke-width="2"><title>judged {word}: {s:.3f}</title></line>')
    parts.append(f'<text x="{LEFT}" y="{HEIGHT - 4}" font-size="10" fill="#374151">0</text>')
    parts.append(f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 4}" font-size="10" fill="#374151" '
                 f'text-anchor="end">{top:g}</text>')
    parts.append(f'<text x="{WIDTH / 2:.0f}" y="{HEIGHT - 4}" font-size="10" fill="#374151" text-anchor="middle">'
                 f'score (▲ seeds · ticks below: your verdicts, green relevant, red not)</text>')
    parts.append("</svg>")
    return "".join(parts)


def window_picture(seeds: Sequence[str], window: Sequence[bytes], labels: Sequence[bool | None], language: str,
                   fixed: float | None) -> tuple[Scored, Distribution]:
    """The window's scores under the model learned now (the review queue's), and what the histogram draws
    of them. Pure CPU: may run in a worker process or a thread."""
    from ingest.judge.model import Scored
    from ingest.judge.scoring import fit_window

    model, scores = fit_window(seeds, window, labels, language, fixed, rescore=True)
    values = [s.score for s in scores]
    return Scored(scores, model.threshold), Distribution(
        values, model.threshold.value, [s.score for s in model.score_texts(seeds)],
        [v for v, lab in zip(values, labels, strict=True) if lab is True],
        [v for v, lab in zip(values, labels, strict=True) if lab is False])
