"""Stage 2, text: a page's text and metadata (trafilatura), the features the judges need (terms,
fingerprints), and the plain-text form seeds and corpus files share."""
