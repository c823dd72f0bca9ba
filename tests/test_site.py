"""The built site in a real browser (headless Chromium): every page loads without errors, every image decodes,
no internal link is broken, every chapter shows the paper beside ours with verdicts, and search finds a chapter.

`make test` builds the site first (``jupyter-book build``, no re-execution) into ``_build/html`` and installs
Debian's chromium where it is missing; screenshots of every page go to ``_build/screenshots/`` for a person to
look at.  Marked ``site``: ``make test-fast`` leaves it out.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from site_check import CHROMIUM, check_site, search

from xai_utils import report

pytestmark = pytest.mark.site

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"
CHAPTERS = ("salagg", "s_and_i", "hermitry", "disagreement", "synthetic_cells")


@pytest.fixture(scope="module")
def site() -> Path:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package (apt-get install chromium)")
    build = subprocess.run([str(Path(sys.executable).with_name("jupyter-book")), "build", ".", "-W", "-n",
                            "--keep-going"], cwd=ROOT, capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return SITE


@pytest.fixture(scope="module")
def pages(site):
    return check_site(site, ROOT / "_build" / "screenshots")


def test_every_page_loads_without_errors_and_with_its_images(pages):
    assert {"book/intro.html", "book/overview.html", *(f"book/{c}.html" for c in CHAPTERS)} <= set(pages)
    problems = {rel: p.problems for rel, p in pages.items() if p.problems}
    assert not problems, problems
    assert sum(p.images for p in pages.values()) >= 30  # the chapters' figures are there (and decoded, above)
    assert len(list((ROOT / "_build" / "screenshots").glob("*.png"))) == len(pages) - 1  # index.html redirects


def test_every_chapter_shows_the_paper_beside_ours_with_a_badge_per_claim(pages):
    """Each claim in the chapter's results is shown as a verdict badge; the overview links to each of them
    (its links' anchors are checked with every page's links)."""
    phrases = {report.phrase(v) for v in report.VERDICTS}
    claims = 0
    for chapter in CHAPTERS:
        for preset, rel in (("offline", f"book/{chapter}.html"), ("real", f"book/real/{chapter}.html")):
            if rel not in pages:
                assert chapter == "synthetic_cells", f"{rel} is missing"  # the one chapter without a real page
                continue
            headers = [h.lower() for h in pages[rel].table_headers]
            assert any("paper" in h for h in headers) and any("ours" in h for h in headers), (rel, headers)
            recorded = json.loads(report.results_path(chapter, preset, ROOT / "book" / "results").read_text())["claims"]
            assert len(pages[rel].badges) == len(recorded) > 0 and set(pages[rel].badges) <= phrases, rel
            claims += len(recorded)
    overview = pages["book/overview.html"]
    # one badge per claim row, and one per verdict kind heading the counts
    assert claims < len(overview.badges) <= claims + len(report.VERDICTS), (claims, overview.badges)


def test_chapters_read_as_papers_code_folded_and_figures_numbered(pages):
    """Issue 20: no code shows without a click except a run's injected parameters; every figure among the
    outputs has a numbered caption, numbered 1, 2, ... in order (so none is shown twice); no object reprs."""
    for rel, page in pages.items():
        assert page.visible_code == (1 if rel.startswith("book/real/") else 0), (rel, page.visible_code)
        assert page.captions == list(range(1, page.output_images + 1)), (rel, page.captions, page.output_images)
        assert not any(r in page.text for r in ("<Axes", "<Figure size", "<matplotlib")), rel  # no reprs
    assert sum(p.output_images for p in pages.values()) >= 30


def test_search_finds_the_chapters(site):
    found = search(site, "saliency")
    assert {"book/salagg.html", "book/disagreement.html"} <= set(found), found


def test_a_missing_image_and_a_broken_link_are_caught(site, tmp_path):
    """The check itself: a copy of the site with one figure deleted, one link pointing nowhere, one to a missing
    anchor, and the start page redirecting to a missing page."""
    copy = tmp_path / "html"
    shutil.copytree(site, copy)
    page = copy / "book" / "salagg.html"
    html = page.read_text()
    image = next(p for p in (copy / "_images").iterdir() if p.name in html)
    image.unlink()
    page.write_text(html.replace("</article>", '<a href="nowhere.html">a link to nowhere</a>'
                                               '<a href="hermitry.html#claim-nope">a missing claim</a></article>', 1))
    index = copy / "index.html"
    index.write_text(index.read_text().replace("book/intro.html", "book/gone.html"))
    checked = check_site(copy)
    assert checked["index.html"].problems and "gone.html" in checked["index.html"].problems[0]
    problems = checked["book/salagg.html"].problems
    assert any(p.startswith("image not decoded") and image.name in p for p in problems), problems
    assert any(p.startswith("broken link") and p.endswith("/book/nowhere.html") for p in problems), problems
    assert any(p.startswith("link to a missing anchor") and p.endswith("hermitry.html#claim-nope") for p in problems)
    assert not checked["book/hermitry.html"].problems  # the other pages are untouched
