"""Self-contained HTML reports: plotly figures with plotly.js inlined, so they open offline."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
import numpy as np
import numpy.typing as npt
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from inferplan import __version__
from inferplan.fileio import write_text_atomic


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    title: str
    note: str = ""
    table: Table | None = None
    figures: list[str] = field(default_factory=list)


@functools.cache
def _plotly_template() -> dict[str, Any]:
    """The plotly_white template as plain JSON, made once: expanding it per figure was most of a figure's cost."""
    return dict(pio.templates["plotly_white"].to_plotly_json())


def flat_rows(d: dict[str, Any], prefix: str = "") -> list[list[str]]:
    """A nested dict as (dotted key, value) table rows: a run's inputs or summary."""
    rows: list[list[str]] = []
    for k, v in d.items():
        if isinstance(v, dict) and v:
            rows += flat_rows(v, f"{prefix}{k}.")
        else:
            rows.append([f"{prefix}{k}", "-" if v is None or v == [] or v == {} else
                         (f"{v:,.4g}" if isinstance(v, float) else str(v))])
    return rows


def figure_html(fig: go.Figure, height: int = 360) -> str:
    fig.update_layout(margin=dict(l=50, r=20, t=50, b=40), height=height)
    doc = fig.to_plotly_json()
    doc["layout"]["template"] = _plotly_template()
    return str(pio.to_html(doc, full_html=False, include_plotlyjs=False, validate=False,
                           config={"displaylogo": False}))


def cdf_figure(title: str, series: dict[str, npt.NDArray[np.float64]], unit: str = "s", max_points: int = 1000) -> str:
    """Empirical CDFs, thinned to at most ``max_points`` points per line."""
    fig = go.Figure()
    for name, values in series.items():
        x = np.sort(values[np.isfinite(values)])
        if x.size == 0:
            continue
        idx = np.unique(np.linspace(0, x.size - 1, min(max_points, x.size)).astype(int))
        fig.add_trace(go.Scatter(x=x[idx], y=(idx + 1) / x.size, mode="lines", name=name))
    fig.update_layout(title=title, xaxis_title=unit, yaxis_title="fraction of requests")
    return figure_html(fig)


def line_figure(title: str, x: npt.NDArray[np.float64], lines: dict[str, npt.NDArray[np.float64]], y_title: str) -> str:
    fig = go.Figure()
    for name, y in lines.items():
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=name))
    fig.update_layout(title=title, xaxis_title="time (s)", yaxis_title=y_title)
    return figure_html(fig)


def _template(name: str) -> jinja2.Template:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string((resources.files("inferplan.report") / "templates" / name).read_text())


def sections_html(sections: list[Section]) -> markupsafe.Markup:
    """The sections as HTML: the body of a report, and of a workbench page, so a figure looks the same in both."""
    return markupsafe.Markup(_template("sections.html.j2").render(sections=sections))


def report_css() -> str:
    return (resources.files("inferplan.report") / "templates" / "style.css").read_text()


def plotly_js() -> str:
    """plotly.js, from the installed plotly package: reports inline it, the workbench serves it."""
    return str(get_plotlyjs())


def render(path: Path, title: str, subtitle: str, sections: list[Section], inputs: dict[str, Any]) -> Path:
    html = _template("report.html.j2").render(
        title=title,
        subtitle=subtitle,
        body=sections_html(sections),
        css=markupsafe.Markup(report_css()),
        plotlyjs=markupsafe.Markup(plotly_js()),
        version=__version__,
        inputs=json.dumps(inputs, default=str),
    )
    write_text_atomic(path, html)
    return path
