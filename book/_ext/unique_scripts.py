"""Sphinx extension: each page loads each script once.

With Sphinx 7.4 and jupyter-book 1.0, the inline scripts that sphinx-thebe and sphinx-togglebutton add while
the sources are read reach every page twice; the second ``const THEBE_JS_URL`` then fails with "Identifier has
already been declared", an error in every page's console (found by the browser test, tests/test_site.py).
"""

from __future__ import annotations


def _unique(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        # an inline script is added once with filename "" and once with None: both mean "no file"
        key = (getattr(js, "filename", js) or "",
               tuple(sorted((k, str(v)) for k, v in getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(js)
    scripts[:] = kept


def setup(app):
    app.connect("html-page-context", _unique, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
