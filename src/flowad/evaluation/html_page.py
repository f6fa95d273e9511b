"""Self-contained HTML pages for reports: one file, styles inline, figures embedded, no scripts.

Example:
    >>> page = html_page("scores", "<p>hello</p>")
    >>> page.startswith("<!doctype html>") and "<p>hello</p>" in page
    True
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

__all__ = ["html_page", "html_table", "img_tag", "png_uri"]

_STYLE = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
          "table.t{border-collapse:collapse;font-size:13px;margin:.5em 0 1.5em}"
          "table.t td,table.t th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}"
          "img{max-width:100%}.figures{display:flex;flex-wrap:wrap;gap:12px}"
          ".note{color:#555;font-size:13px}.big{font-size:1.6em;font-weight:600}")


def html_table(frame: pd.DataFrame, digits: int = 3, index: bool = True) -> str:
    """A DataFrame as an HTML table for the self-contained reports."""
    return frame.round(digits).to_html(border=0, classes="t", na_rep="-", index=index)


def png_uri(data: bytes) -> str:
    """PNG bytes as a ``data:`` URI, for ``src`` attributes."""
    return "data:image/png;base64," + base64.b64encode(data).decode()


def img_tag(path: Path) -> str:
    """A PNG embedded as a data URI (the reports stay one file)."""
    return f'<img alt="{html.escape(Path(path).stem)}" src="{png_uri(Path(path).read_bytes())}">'


def html_page(title: str, body: str, style: str = "") -> str:
    """A complete HTML document with the reports' shared style (a favicon inline, so that a
    browser opening the file asks for nothing); ``style`` adds a page's own CSS rules."""
    icon = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E"
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width,initial-scale=1'><link rel='icon' href=\"{icon}\">"
            f"<title>{html.escape(title)}</title><style>{_STYLE}{style}</style></head><body>{body}</body></html>\n")
