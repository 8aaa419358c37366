"""A report as plain data (sections of tables, figures, notes and commands), written out as
one self-contained HTML page or as Markdown.

The HTML page needs nothing beside itself: the style sheet is inline and every figure is
embedded as a ``data:`` URI (base64 PNG or SVG; an SVG in an ``<img>`` keeps its ids to
itself, so two charts cannot clash). Every piece of text is escaped with
:func:`html.escape`. The Markdown links the chart files next to it (``charts/x.png``).
Neither carries a time stamp, so the same folder gives the same bytes.

Public: ``Table``, ``Figure``, ``Section``, ``Document``, ``to_html``, ``to_markdown``.
"""
from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Table", "Figure", "Section", "Document", "to_html", "to_markdown"]

_NUMBER = re.compile(r"[+-]?[\d,]*\.?\d+(e[+-]?\d+)?( %)?")
_MIME = {".png": "image/png", ".svg": "image/svg+xml"}

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 1.8em; }
table.kpi { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.92em; }
table.kpi caption { text-align: left; font-weight: 600; padding-bottom: 0.3em; }
table.kpi th, table.kpi td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; }
table.kpi th { background: #f3f3f3; } table.kpi td.num { text-align: right; font-variant-numeric: tabular-nums; }
.scroll { overflow-x: auto; } figure { margin: 1.2em 0; } figure img { max-width: 100%; height: auto; }
figcaption { font-size: 0.9em; color: #555; } pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; }
"""


@dataclass(frozen=True)
class Table:
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Figure:
    """A chart: ``image`` is embedded in HTML, ``link`` (relative) is used by Markdown."""

    title: str
    caption: str
    image: Path
    link: str


@dataclass(frozen=True)
class Section:
    title: str
    text: str = ""
    code: str = ""
    tables: tuple[Table, ...] = ()
    figures: tuple[Figure, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Document:
    title: str
    subtitle: str
    sections: tuple[Section, ...]


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _is_number(cell: str) -> bool:
    return _NUMBER.fullmatch(cell) is not None


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f'<td class="num">{_e(c)}</td>' if _is_number(c) else f"<td>{_e(c)}</td>"
                                    for c in row) + "</tr>\n" for row in table.rows)
    return (f'<div class="scroll"><table class="kpi"><caption>{_e(table.title)}</caption>\n'
            f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody></table></div>\n")


def _data_uri(path: Path) -> str:
    return f"data:{_MIME[path.suffix]};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _html_figure(figure: Figure) -> str:
    return (f'<figure><img alt="{_e(figure.title)}" src="{_data_uri(figure.image)}">\n'
            f"<figcaption><strong>{_e(figure.title)}.</strong> {_e(figure.caption)}</figcaption></figure>\n")


def _html_section(section: Section) -> str:
    parts = [f"<section>\n<h2>{_e(section.title)}</h2>\n"]
    if section.text:
        parts.append(f"<p>{_e(section.text)}</p>\n")
    if section.code:
        parts.append(f"<pre><code>{_e(section.code)}</code></pre>\n")
    parts += [_html_table(t) for t in section.tables]
    parts += [_html_figure(f) for f in section.figures]
    if section.notes:
        parts.append("<ul>\n" + "".join(f"<li>{_e(n)}</li>\n" for n in section.notes) + "</ul>\n")
    parts.append("</section>\n")
    return "".join(parts)


def to_html(doc: Document) -> str:
    """One self-contained HTML page."""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{_e(doc.title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"<h1>{_e(doc.title)}</h1>\n<p>{_e(doc.subtitle)}</p>\n"
            + "".join(_html_section(s) for s in doc.sections) + "</body>\n</html>\n")


def _md_cell(text: str) -> str:
    """Text safe in a Markdown table cell: no raw HTML (renderers pass it through), no
    unescaped pipe, one line."""
    text = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _md_table(table: Table) -> str:
    lines = [f"**{_md_cell(table.title)}**", "", "| " + " | ".join(_md_cell(c) for c in table.columns) + " |",
             "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines) + "\n"


def _md_section(section: Section) -> str:
    parts = [f"## {section.title}\n"]
    if section.text:
        parts.append(section.text + "\n")
    if section.code:
        parts.append("```bash\n" + section.code + "\n```\n")
    parts += [_md_table(t) for t in section.tables]
    parts += [f"![{_md_cell(f.title)}]({f.link})\n\n*{_md_cell(f.title)}.* {_md_cell(f.caption)}\n"
              for f in section.figures]
    parts += ["".join(f"- {n}\n" for n in section.notes)] if section.notes else []
    return "\n".join(parts)


def to_markdown(doc: Document) -> str:
    return f"# {doc.title}\n\n{doc.subtitle}\n\n" + "\n".join(_md_section(s) for s in doc.sections)
