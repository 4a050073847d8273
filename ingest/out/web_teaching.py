"""The web view's teaching pages: verdict buttons, Apply, Make it a seed, a judged page, the review
queue and the near misses (routes of ingest.out.web's app; the same page, form and CSRF helpers)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from ingest.judge.quality import ModelReport
from ingest.run.feedback import Preview, ReviewItem, model_report
from ingest.sources.urls import display, site_of
from ingest.store import SqlStore

if TYPE_CHECKING:
    from ingest.out.standing import Standing
    from ingest.out.web_context import WebContext

PAGE_SIZE = 50


@dataclass(frozen=True)
class ModelNow:
    """What the pages show of the model learned now (ingest.out.web_teaching.teaching_routes' now_view)."""

    review: list[ReviewItem]
    histogram: Any  # Markup of the SVG, or None before any page
    model: ModelReport
    standing: Standing | None  # every window page's score and threshold under it; None before any page

    def article(self, aid: int) -> tuple[float, float] | None:
        return self.standing.article(aid) if self.standing is not None else None

    def article_terms(self, aid: int) -> tuple[str, ...] | None:
        """The terms that count most for the article under this model (None outside its window)."""
        pid = self.standing.window.articles.get(aid) if self.standing is not None else None
        found = self.standing.page(pid) if self.standing is not None and pid is not None else None
        return found[0].terms if found is not None else None

    def page(self, pid: int) -> tuple[float, float] | None:
        found = self.standing.page(pid) if self.standing is not None else None
        return None if found is None else (found[0].score, found[1])


def teaching_routes(ctx: WebContext, page: Callable[..., HTMLResponse],
                    form: Callable[[Request], Awaitable[dict[str, str]]], aggregate: Callable[[str, Callable], Any],
                    article: Callable[..., Awaitable[Response]]
                    ) -> tuple[Callable[..., Awaitable[ModelNow | None]], list[Route]]:
    async def _verdict(ref: str, relevant: bool) -> str:
        """Record and apply the verdict; the redirect's query: what it did to the corpus, and how many
        other pages the model, learned again with it, would decide otherwise."""
        from ingest.run.feedback import apply_verdicts, count_changes, mark

        now = ctx.clock()

        def apply(store: SqlStore) -> Any:
            mark(store, [ref], relevant, now)
            return apply_verdicts(store, now)

        done = await ctx.write(apply)
        if ctx.on_verdict is not None:
            ctx.on_verdict()
        msg = "withdrawn" if done.withdrawn else "added" if done.added or done.restored else "recorded"
        # the model with the verdict, learned once (in a thread) and kept for the page the redirect shows
        model = await now_view()
        st = model.standing if model is not None else None
        pv = count_changes(ctx.store, st.window.ids, st.window.labels, st.scored, st.window.own) if st is not None \
            else Preview(0, 0)
        return urlencode({"done": msg, "join": pv.join, "leave": pv.leave})

    async def article_verdict(request: Request) -> Response:
        fields = await form(request)
        aid = request.path_params["id"]
        msg = await _verdict(f"a{aid}", fields.get("verdict") == "relevant")
        return RedirectResponse(f"/a/{aid}?{msg}", status_code=303)

    async def page_verdict(request: Request) -> Response:
        fields = await form(request)
        msg = await _verdict(f"p{request.path_params['id']}", fields.get("verdict") == "relevant")
        back = request.headers.get("referer", "")
        target = urlsplit(back).path if urlsplit(back).path in ("/review", "/near-misses") else "/review"
        return RedirectResponse(f"{target}?{msg}", status_code=303)

    async def apply_verdicts_now(request: Request) -> Response:
        """The Apply button: re-decide the recent pages with the model learned now (read in the store's
        thread, learned in a thread off the event loop, applied both ways in the store's thread)."""
        from ingest.run.rescore import apply_rescore, plan_rescore, score_rescore

        await form(request)
        config, now = ctx.config(), ctx.clock()
        rel = config.relevance
        plan = await ctx.write(lambda store: plan_rescore(store, now - rel.keep_rejected, config))
        ids, window, texts = plan.stream()
        scored = await asyncio.to_thread(score_rescore, ctx.seeds(), ids, window, texts, plan.verdicts, rel.language,
                                         rel.threshold)
        report = await ctx.write(lambda store: apply_rescore(store, plan, ids, scored, ctx.clock(), apply=True))
        a = report.applied
        query = urlencode({"done": "applied", "joined": len(a.added) + len(a.restored), "left": len(a.withdrawn)})
        return RedirectResponse(f"/review?{query}", status_code=303)

    async def article_seed(request: Request) -> Response:
        from ingest.run.feedback import FeedbackError, add_seed, apply_verdicts, mark

        await form(request)
        aid = request.path_params["id"]
        now = ctx.clock()
        config = ctx.config()

        def seed(store: SqlStore) -> Path:
            path, row = add_seed(store, config, f"a{aid}", now)
            if row is not None:
                mark(store, [f"p{row['id']}"], True, now)
                apply_verdicts(store, now)
            return path

        try:
            await ctx.write(seed)
        except FeedbackError as exc:  # said on the page itself (the reason is the store's, not the URL's)
            response = await article(request, error=f"Not made a seed: {exc}")
            response.status_code = 409
            return response
        return RedirectResponse(f"/a/{aid}?done=seeded", status_code=303)

    async def page_view(request: Request) -> Response:
        """A judged page that is not in the corpus (a rejected one, say): what the model saw of it."""
        from ingest.blobs import unpack

        row = ctx.store.page_by_id(request.path_params["id"])
        if row is None:
            return PlainTextResponse("no such page", status_code=404)
        if row["article_id"] is not None:
            return RedirectResponse(f"/a/{row['article_id']}", status_code=303)
        doc = unpack(row["doc"]) if row["doc"] is not None else {}
        url = row["final_url"] or row["url"]
        text = doc.get("text") or ""
        judged = ctx.store.verdicts().get(row["id"])
        now = await now_view()
        current = now.page(row["id"]) if now is not None else None
        return page(request, "page.html", title=row["title"] or doc.get("title") or display(url), nav="review",
                    judged=judged, current=current,
                    pid=row["id"], url=url, site=site_of(doc.get("site"), url), row=row,
                    terms=json.loads(row["terms"] or "[]")[:12],
                    paragraphs=[p for p in text.split("\n\n") if p.strip()])

    review_cache: dict[tuple, ModelNow] = {}

    async def now_view(compute: bool = True) -> ModelNow | None:
        """The model learned now and the window's scores under it, shared by every page that shows a score
        (one number per page at one moment). Learning takes a fraction of a second: done again only when
        the window, the verdicts or the seeds changed, and in a thread (pure numpy, no store), so the
        service's event loop keeps fetching meanwhile."""
        from markupsafe import Markup

        from ingest.out.histogram import svg
        from ingest.out.standing import learn, read
        from ingest.run.feedback import pick_review

        seeds, config = ctx.seeds(), ctx.config()
        rel = config.relevance
        key = (ctx.store.review_state(), hash(tuple(seeds)), rel.language, rel.threshold,
               tuple((f.url, f.threshold) for f in config.feeds))
        if key not in review_cache and not compute:
            return None
        if key not in review_cache:
            window = read(ctx.store, config)
            review_cache.clear()
            report = model_report(ctx.store)
            if not window.ids:
                review_cache[key] = ModelNow([], None, report, None)
                return review_cache[key]
            now = await asyncio.to_thread(learn, seeds, window, rel.language, rel.threshold, ctx.clock())
            # the model box describes the model these scores come from: one threshold on the page
            review_cache[key] = ModelNow(pick_review(ctx.store, window.ids, now.scored, 20, window.own),
                                         Markup(svg(now.picture)), now.report(report), now)
        return review_cache[key]

    async def review_page(request: Request) -> Response:
        now = await now_view()
        assert now is not None
        return page(request, "items.html", title="Review", nav="review", items=now.review, histogram=now.histogram,
                    model=now.model,
                    intro="The model is least sure about these: a few verdicts here teach it most.",
                    empty="Nothing to review yet.")

    async def near_misses(request: Request) -> Response:
        from ingest.run.feedback import ReviewItem, page_ref, snippet

        now = await now_view()
        items = []
        for row in ctx.store.near_misses(PAGE_SIZE):
            url = row["final_url"] or row["url"]
            doc = ctx.store.page_doc(row)
            found = now.standing.page(row["id"]) if now is not None and now.standing is not None else None
            # under the model learned now, as every page shows a score; the decision's where it left the window
            score, th, terms = (found[0].score, found[1], found[0].terms) if found is not None else \
                (row["score"], row["threshold"], tuple(json.loads(row["terms"] or "[]")))
            if score < th / 2:  # no longer near under the model now
                continue
            items.append(ReviewItem(page_ref(row["id"]), url, row["title"] or "", site_of(doc.site if doc else "", url),
                                    round(score, 6), round(th, 6), False, tuple(terms),
                                    snippet(doc.text) if doc is not None else ""))
        return page(request, "items.html", title="Near misses", nav="near", items=items,
                    intro="Rejected pages scored at least half their threshold, newest first: where recall is "
                          "recovered.", empty="No near miss.")

    return now_view, [Route("/a/{id:int}/verdict", article_verdict, methods=["POST"]),
            Route("/a/{id:int}/seed", article_seed, methods=["POST"]),
            Route("/p/{id:int}", page_view), Route("/p/{id:int}/verdict", page_verdict, methods=["POST"]),
            Route("/apply", apply_verdicts_now, methods=["POST"]),
            Route("/review", review_page), Route("/near-misses", near_misses)]

