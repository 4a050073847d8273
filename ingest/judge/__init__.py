"""Stage 3, judge: relevance against the seeds, duplicate and story identity, the decision for a page."""
