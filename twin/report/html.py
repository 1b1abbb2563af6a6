"""Self-contained HTML pages: figures as inline PNG, tables from plain rows, no network needed."""

from __future__ import annotations

import base64
import html
import io


def esc(value) -> str:
    """Any value as HTML text: a model's, a trace's or a config's strings may hold markup."""
    return html.escape(str(value), quote=True)


def plain_text(fig) -> None:
    """Every text of the figure drawn as written: a name with two '$' is not TeX to parse (and fail on)."""
    from matplotlib.text import Text

    for text in fig.findobj(Text):
        text.set_parse_math(False)


def tidy(fig) -> None:
    """``fig.tight_layout()``, quietly where long labels (a user's names) leave it no room:
    the page's PNG is cropped to what was drawn anyway."""
    import warnings

    plain_text(fig)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Tight layout not applied", UserWarning)
        fig.tight_layout()


def figure_tag(fig, alt: str) -> str:
    plain_text(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"><figcaption>' \
           f'{html.escape(alt)}</figcaption></figure>'


def table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
figure{display:inline-block;margin:.5em}figcaption{font-size:.85em;color:#555;text-align:center}
.meta{color:#555;font-size:.9em}
"""


def page(title: str, sections: list[str]) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{''.join(sections)}</body></html>")
