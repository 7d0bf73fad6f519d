"""The HTML of ``mammo-edge report``: one static page that opens offline from disk.

No CDN, no server, no external fonts: the page is plain HTML with its CSS inline and
images beside it (relative links). A few lines of inline JavaScript sort the table by
probability and filter it by call, status and outcome; without JavaScript the page is the
table in input order and everything else still reads. A print style sheet hides the
controls and keeps rows whole; a filtered table prints as shown, with its "Showing N of
M" line.

:func:`render_report` is a pure function of a :class:`ReportPage`: the command
(:mod:`mammo_edge.commands.report`) gathers the facts, this module only writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

OUTCOMES = ("TP", "FP", "FN", "TN")
OUTCOME_NAMES = {
    "TP": "true positive",
    "FP": "false positive",
    "FN": "false negative",
    "TN": "true negative",
}


@dataclass(frozen=True)
class ReportRow:
    """One input's row. Image paths are relative to the page; ``None`` when absent."""

    index: int
    path: str
    status: str
    probability: float | None = None
    label: str | None = None
    truth: str | None = None
    outcome: str | None = None
    thumbnail: str | None = None
    overlay: str | None = None
    overlay_thumbnail: str | None = None
    peak_x: float | None = None
    peak_y: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class EvaluationView:
    """The ``--labels`` section: metric lines, the confusion matrix and the ROC image."""

    labels_file: str
    metrics: list[tuple[str, str]]
    confusion: tuple[int, int, int, int]  # TN, FP, FN, TP
    roc_image: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReportPage:
    """Everything the page shows."""

    title: str
    generated: str
    summary: list[tuple[str, str]]
    errors_by_code: dict[str, int]
    rows: list[ReportRow]
    heatmap_note: str
    class_names: tuple[str, str] = ("normal", "abnormal")
    evaluation: EvaluationView | None = None


_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 1.5rem;
  color: #1a1a1a; background: #fff; line-height: 1.4; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #bbb; }
.disclaimer { color: #5a3d00; background: #fff4d6; padding: .4rem .6rem; display: inline-block; }
dl.summary { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
dl.summary dt { font-weight: 600; }
dl.summary dd { margin: 0; overflow-wrap: anywhere; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border: 1px solid #999; padding: .3rem .5rem; text-align: left; vertical-align: top; }
thead th { background: #e8e8e8; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
table.results img { display: block; max-width: 180px; max-height: 220px; height: auto; }
tr.error td { background: #fde8e8; }
.call-abnormal { font-weight: 700; color: #8a0000; }
.call-normal { color: #1a1a1a; }
.outcome-FP, .outcome-FN { font-weight: 700; color: #8a0000; }
.controls { display: flex; flex-wrap: wrap; gap: 1rem; align-items: end; margin: .5rem 0; }
.controls label { display: flex; flex-direction: column; font-weight: 600; }
.controls select { font: inherit; padding: .2rem; }
.path { overflow-wrap: anywhere; min-width: 9rem; max-width: 16rem; }
td.number, th { white-space: nowrap; }
.evaluation { display: flex; flex-wrap: wrap; gap: 1rem 2rem; align-items: flex-start; }
table.metrics { max-width: 30rem; }
table.metrics th, table.metrics td { white-space: normal; }
caption { font-weight: 600; text-align: left; padding: .2rem 0; }
.note { color: #444; }
figure { margin: .5rem 0; }
@media print {
  body { margin: 0; font-size: 10pt; }
  .controls, .no-print { display: none !important; }
  tr { break-inside: avoid; }
  table.results img { max-width: 120px; max-height: 150px; }
  a { color: inherit; text-decoration: none; }
  h2 { break-after: avoid; }
}
"""

#: Sorting and filtering; every row stays in the document, hidden rows are only hidden.
_SCRIPT = """
(function () {
  var table = document.getElementById("results");
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var controls = document.getElementById("controls");
  var shown = document.getElementById("shown");
  controls.hidden = false;
  function value(id) { var node = document.getElementById(id); return node ? node.value : ""; }
  function update() {
    var call = value("filter-call"), status = value("filter-status");
    var outcome = value("filter-outcome"), order = value("sort");
    var sorted = rows.slice();
    if (order !== "input") {
      var sign = order === "probability-desc" ? -1 : 1;
      sorted.sort(function (a, b) {
        var pa = a.dataset.probability, pb = b.dataset.probability;
        if (pa === "" && pb === "") { return a.dataset.index - b.dataset.index; }
        if (pa === "") { return 1; }
        if (pb === "") { return -1; }
        return sign * (parseFloat(pa) - parseFloat(pb)) || a.dataset.index - b.dataset.index;
      });
    }
    var count = 0;
    sorted.forEach(function (row) {
      var keep = (!call || row.dataset.call === call) &&
        (!status || row.dataset.status === status) &&
        (!outcome || row.dataset.outcome === outcome);
      row.hidden = !keep;
      count += keep ? 1 : 0;
      body.appendChild(row);
    });
    shown.textContent = "Showing " + count + " of " + rows.length + " image(s).";
  }
  controls.addEventListener("change", update);
  update();
})();
"""


def _text(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _probability(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def render_report(page: ReportPage) -> str:
    """The whole ``index.html`` of a report."""
    parts = [
        "<!doctype html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_text(page.title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        "<header>",
        f"<h1>{_text(page.title)}</h1>",
        '<p class="disclaimer">Research use only: not a medical device. Heatmaps show where '
        "the model's score came from, not a diagnosis.</p>",
        "</header>",
        "<main>",
        _summary_section(page),
    ]
    if page.evaluation is not None:
        parts.append(_evaluation_section(page.evaluation, page.class_names))
    parts.append(_table_section(page))
    parts += [
        "</main>",
        f'<footer><p class="note">Generated {_text(page.generated)} by mammo-edge.</p></footer>',
        f"<script>{_SCRIPT}</script>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(parts)


def _summary_section(page: ReportPage) -> str:
    items = "".join(
        f"<dt>{_text(name)}</dt><dd>{_text(value)}</dd>" for name, value in page.summary
    )
    if page.errors_by_code:
        errors = ", ".join(
            f"{code}: {count}" for code, count in sorted(page.errors_by_code.items())
        )
    else:
        errors = "none"
    items += f"<dt>Errors by code</dt><dd>{_text(errors)}</dd>"
    return (
        '<section aria-labelledby="summary-title">'
        '<h2 id="summary-title">Run summary</h2>'
        f'<dl class="summary">{items}</dl>'
        f'<p class="note">{_text(page.heatmap_note)}</p>'
        "</section>"
    )


def _evaluation_section(view: EvaluationView, class_names: tuple[str, str]) -> str:
    metric_rows = "".join(
        f'<tr><th scope="row">{_text(name)}</th><td class="number">{_text(value)}</td></tr>'
        for name, value in view.metrics
    )
    negative, positive = (_text(name) for name in class_names)
    tn, fp, fn, tp = view.confusion
    confusion = (
        '<table class="confusion"><caption>Confusion matrix at the threshold</caption>'
        f'<thead><tr><td></td><th scope="col">called {negative}</th>'
        f'<th scope="col">called {positive}</th></tr></thead><tbody>'
        f'<tr><th scope="row">truth {negative}</th><td class="number">TN {tn}</td>'
        f'<td class="number">FP {fp}</td></tr>'
        f'<tr><th scope="row">truth {positive}</th><td class="number">FN {fn}</td>'
        f'<td class="number">TP {tp}</td></tr>'
        "</tbody></table>"
    )
    roc = ""
    if view.roc_image:
        roc = (
            f'<figure><img src="{_text(view.roc_image)}" width="420" height="440" '
            'alt="ROC curve: sensitivity against 1 - specificity, the operating point '
            'at the threshold marked in red">'
            "<figcaption>ROC curve of the labelled, scored images.</figcaption></figure>"
        )
    notes = "".join(f'<p class="note">{_text(note)}</p>' for note in view.notes)
    return (
        '<section aria-labelledby="evaluation-title">'
        '<h2 id="evaluation-title">Against the labels</h2>'
        f"<p>Labels: <code>{_text(view.labels_file)}</code></p>"
        '<div class="evaluation">'
        f'<table class="metrics"><caption>Metrics</caption><tbody>{metric_rows}</tbody></table>'
        f"<div>{confusion}{roc}</div></div>{notes}"
        "</section>"
    )


def _table_section(page: ReportPage) -> str:
    with_truth = page.evaluation is not None
    negative, positive = page.class_names
    headers = ["#", "Image", "Thumbnail", "Heatmap", "Probability", "Call"]
    if with_truth:
        headers += ["Truth", "Outcome"]
    headers += ["Peak (x, y)", "Status"]
    head = "".join(f'<th scope="col">{_text(name)}</th>' for name in headers)
    outcome_filter = ""
    if with_truth:
        options = "".join(
            f'<option value="{code}">{code} ({OUTCOME_NAMES[code]})</option>' for code in OUTCOMES
        )
        outcome_filter = (
            '<label for="filter-outcome">Outcome<select id="filter-outcome">'
            f'<option value="">all</option>{options}</select></label>'
        )
    controls = (
        '<form id="controls" class="controls" hidden aria-label="Sort and filter the table" '
        'onsubmit="return false">'
        '<label for="sort">Order<select id="sort">'
        '<option value="input">input order</option>'
        '<option value="probability-desc">probability, highest first</option>'
        '<option value="probability-asc">probability, lowest first</option>'
        "</select></label>"
        '<label for="filter-call">Call<select id="filter-call"><option value="">all</option>'
        f'<option value="{_text(positive)}">{_text(positive)}</option>'
        f'<option value="{_text(negative)}">{_text(negative)}</option></select></label>'
        '<label for="filter-status">Status<select id="filter-status">'
        '<option value="">all</option><option value="ok">ok</option>'
        '<option value="error">error</option></select></label>'
        f"{outcome_filter}</form>"
    )
    rows = "".join(_row(row, with_truth, positive) for row in page.rows)
    return (
        '<section aria-labelledby="images-title">'
        '<h2 id="images-title">Images</h2>'
        f"{controls}"
        '<noscript><p class="note">Sorting and filtering need JavaScript; the table below is '
        "in input order.</p></noscript>"
        f'<p id="shown" class="note" aria-live="polite">{len(page.rows)} image(s).</p>'
        '<table id="results" class="results">'
        f"<caption>One row per input ({len(page.rows)}); select a heatmap to open it at full "
        "size.</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
        "</section>"
    )


def _row(row: ReportRow, with_truth: bool, positive: str) -> str:
    name = row.path
    data = (
        f'data-index="{row.index}" data-status="{_text(row.status)}" '
        f'data-call="{_text(row.label or "")}" data-outcome="{_text(row.outcome or "")}" '
        f'data-probability="{_probability(row.probability)}"'
    )
    cells = [f'<td class="number">{row.index + 1}</td>', f'<td class="path">{_text(name)}</td>']
    if row.status != "ok":
        span = 5 + (2 if with_truth else 0)
        # Each part on its own line, the message closed by a full stop, so that the truth
        # or a warning never reads as the end of the error message.
        message = (row.error_message or "").rstrip()
        if message and not message.endswith((".", "!", "?")):
            message += "."
        lines = [f"<strong>{_text(row.error_code)}</strong>: {_text(message)}"]
        lines += [f"Warning: {_text(warning)}" for warning in row.warnings]
        if with_truth:
            lines.append(f"Truth: {_text(row.truth)}." if row.truth else "No label.")
        cells.append(f'<td colspan="{span}">{"<br>".join(lines)}</td>')
        cells.append("<td>error</td>")
        return f'<tr class="error" {data}>{"".join(cells)}</tr>'
    if row.thumbnail:
        cells.append(
            f'<td><img src="{_text(row.thumbnail)}" alt="{_text(name)}, the image as read"></td>'
        )
    else:
        cells.append("<td>(none)</td>")
    if row.overlay and row.overlay_thumbnail:
        where = (
            f"peak at x {row.peak_x:.0f}, y {row.peak_y:.0f}"
            if row.peak_x is not None and row.peak_y is not None
            else "no peak"
        )
        cells.append(
            f'<td><a href="{_text(row.overlay)}"><img src="{_text(row.overlay_thumbnail)}" '
            f'alt="Heatmap of {_text(name)}, {where}, circled"></a></td>'
        )
    else:
        cells.append("<td>(none)</td>")
    cells.append(f'<td class="number">{_probability(row.probability)}</td>')
    call_class = "call-abnormal" if row.label == positive else "call-normal"
    cells.append(f'<td class="{call_class}">{_text(row.label)}</td>')
    if with_truth:
        cells.append(f"<td>{_text(row.truth or 'no label')}</td>")
        outcome = row.outcome or ""
        title = f' title="{OUTCOME_NAMES[outcome]}"' if outcome in OUTCOME_NAMES else ""
        cells.append(f'<td class="outcome-{outcome or "none"}"{title}>{_text(outcome)}</td>')
    peak = (
        f"{row.peak_x:.0f}, {row.peak_y:.0f}"
        if row.peak_x is not None and row.peak_y is not None
        else ""
    )
    cells.append(f'<td class="number">{peak}</td>')
    status = "ok" + (f" ({'; '.join(row.warnings)})" if row.warnings else "")
    cells.append(f"<td>{_text(status)}</td>")
    return f"<tr {data}>{''.join(cells)}</tr>"
