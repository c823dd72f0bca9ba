"""The built site as a reader's browser sees it: every page opened in headless Chromium (Debian's package, driven
by Playwright), with what went wrong on it and a screenshot.  Used by tests/test_site.py."""

from __future__ import annotations

import contextlib
import functools
import http.server
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

#: Chromium's flags on a machine without a network or a screen (the environment notes of this workplace).
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: Where Debian's chromium package puts the browser (installed by `make test` where it is missing).
CHROMIUM = "/usr/bin/chromium"

_REDIRECT = re.compile(r'<meta http-equiv="Refresh" content="\d+;\s*url=([^"]+)"', re.IGNORECASE)
_BROKEN_IMAGES = "Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)"
_LINKS = "Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"
# checkVisibility: Chromium keeps a closed <details>' content laid out (content-visibility), so offsetParent is set
_VISIBLE_CODE = "Array.from(document.querySelectorAll('.cell_input')).filter(e => e.checkVisibility()).length"
_OUTPUT_IMAGES = "document.querySelectorAll('.cell_output img').length"
_CAPTIONS = ("Array.from(document.querySelectorAll('.cell_output p')).map(p => p.innerText.match(/^Figure (\\d+) \\(/))"
             ".filter(m => m).map(m => Number(m[1]))")
_BADGES = "Array.from(document.querySelectorAll('.xai-verdict')).map(e => e.innerText.trim())"


@dataclass
class Page:
    """One page as loaded: its problems (console errors, failed requests, broken images and links) and facts."""

    path: str
    problems: list[str] = field(default_factory=list)
    images: int = 0
    text: str = ""
    table_headers: list[str] = field(default_factory=list)
    visible_code: int = 0  # code cells whose source shows without a click
    output_images: int = 0  # images among the notebook cells' outputs
    captions: list[int] = field(default_factory=list)  # the numbers of the "Figure N (...)" captions, in order
    badges: list[str] = field(default_factory=list)  # the verdict badges' texts


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def serve(root: Path) -> Iterator[str]:
    """Serve ``root`` on a free localhost port; yields the base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        thread.join()


def html_pages(root: Path) -> list[str]:
    """The site's pages (relative paths), without the theme's and the sources' folders."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.html")
                  if not {"_static", "_sources", "_images"} & set(p.relative_to(root).parts))


def _internal_target(href: str, base: str, root: Path) -> Path | None:
    """The file an internal link points at (None for external links and the page's own anchors)."""
    if not href.startswith(base):
        return None
    path = unquote(urlsplit(href).path)[len(urlsplit(base).path):]
    target = root / path
    return target / "index.html" if not path or path.endswith("/") else target


def _has_anchor(page: Path, fragment: str) -> bool:
    """Whether ``page`` has an element with id ``fragment`` (an empty fragment is the page itself)."""
    return not fragment or f'id="{unquote(fragment)}"' in page.read_text(errors="replace")


@contextlib.contextmanager
def browser(executable: str = CHROMIUM):
    """A headless Chromium page (Playwright); Playwright's own browser downloads are not used."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            yield b.new_page(viewport={"width": 1280, "height": 900})
        finally:
            b.close()


def check_site(root: Path, screenshots: Path | None = None, executable: str = CHROMIUM) -> dict[str, Page]:
    """Open every page of the built site ``root`` (``_build/html``): console errors and uncaught exceptions,
    responses >= 400, images not decoded (naturalWidth 0), internal links to missing files or anchors; a full-page
    screenshot of each into ``screenshots``.  A page that only redirects (jupyter-book's ``index.html``) is not
    opened (the browser would leave it while being read): its target must exist."""
    if screenshots is not None:
        shutil.rmtree(screenshots, ignore_errors=True)
        screenshots.mkdir(parents=True)
    out: dict[str, Page] = {}
    with serve(root) as base, browser(executable) as tab:
        current: list[str] = []
        tab.on("console", lambda m: current.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        tab.on("pageerror", lambda e: current.append(f"uncaught: {e}"))
        tab.on("response", lambda r: current.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
        tab.on("requestfailed", lambda r: current.append(f"request failed: {r.url} ({r.failure})"))
        for rel in html_pages(root):
            redirect = _REDIRECT.search((root / rel).read_text(errors="replace"))
            if redirect:
                target = (root / rel).parent / redirect.group(1)
                out[rel] = Page(rel, problems=[] if target.is_file() else [f"redirect to a missing page: {target}"])
                continue
            current.clear()
            tab.goto(base + rel, wait_until="load")
            tab.wait_for_load_state("networkidle")
            page = Page(rel, images=tab.evaluate("document.images.length"), text=tab.inner_text("body"),
                        table_headers=tab.eval_on_selector_all("th", "els => els.map(e => e.innerText.trim())"),
                        visible_code=tab.evaluate(_VISIBLE_CODE), output_images=tab.evaluate(_OUTPUT_IMAGES),
                        captions=tab.evaluate(_CAPTIONS), badges=tab.evaluate(_BADGES))
            page.problems += [f"image not decoded: {src}" for src in tab.evaluate(_BROKEN_IMAGES)]
            for href in tab.evaluate(_LINKS):
                target = _internal_target(href.split("#")[0].split("?")[0], base, root)
                if target is not None and not target.is_file():
                    page.problems.append(f"broken link: {href}")
                elif target is not None and not _has_anchor(target, urlsplit(href).fragment):
                    page.problems.append(f"link to a missing anchor: {href}")
            page.problems = list(dict.fromkeys(current + page.problems))
            if screenshots is not None:
                tab.screenshot(path=str(screenshots / (rel.replace("/", "__")[:-5] + ".png")), full_page=True)
            out[rel] = page
    return out


def search(root: Path, query: str, executable: str = CHROMIUM) -> list[str]:
    """The pages the site's own search (Sphinx's search.html) lists for ``query``."""
    with serve(root) as base, browser(executable) as tab:
        tab.goto(f"{base}search.html?q={query}", wait_until="load")
        tab.wait_for_selector("#search-results a", timeout=20_000)
        hrefs = tab.eval_on_selector_all("#search-results a", "els => els.map(e => e.getAttribute('href'))")
    return list(dict.fromkeys(h.split("#")[0].split("?")[0] for h in hrefs))
