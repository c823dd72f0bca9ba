"""The book's overview page: per chapter and preset the claims counted by verdict, every number of ours
beside the paper's (one figure), and every claim linked to where its chapter decides it.

* :mod:`.results`: read ``book/results/*.json`` into tables and linked HTML; :mod:`.plots`.
"""

from .plots import plot_numbers
from .results import NO_RESULTS, chapter_href, claims, claims_html, numbers, summary, summary_html

__all__ = ["NO_RESULTS", "chapter_href", "claims", "claims_html", "numbers", "plot_numbers", "summary",
           "summary_html"]
