"""`guda-bench leaderboard site`: a static HTML site of the published boards (no server, no CDN).

One page per board (sortable table with CIs, the noise ceiling set apart, unavailable and failed rows with
their reasons, the board's plots, its power line, provenance and the command that reproduces it) and an
index. Styles and the sorting script are inlined; plots are copied next to the pages, so the folder can be
opened from disk or served by any static host.
"""

from __future__ import annotations

import html
import shutil
from pathlib import Path

import pandas as pd

from guda_bench.leaderboard import TEXT_COLUMNS, board_power, is_board, sibling
from guda_bench.store import atomic_write_text, check_output_dir

PLOTS = (("pareto.png", "Quality against cost (Pareto)"), ("pairs.png", "Who beats whom (paired, Holm-adjusted)"),
         ("pairs-lds.png", "Who beats whom by group LDS (paired, Holm-adjusted)"), ("queries.png", "Queries"))
STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;font-size:14px}th,td{padding:4px 8px;border-bottom:1px solid #ddd;text-align:right}
th{cursor:pointer;background:#f3f3f3;position:sticky;top:0}td.l,th.l{text-align:left}td{white-space:nowrap}
td.reason{white-space:normal;font-size:12px}
tr.ceiling td{background:#fff6d5;font-style:italic;border-bottom:2px solid #b90}
tr.bad td{color:#888}.ci{color:#666;font-size:12px}code{background:#f3f3f3;padding:2px 4px}
img{max-width:100%;border:1px solid #ddd}.missing{color:#b00;font-weight:bold}.power{background:#eef5ff;padding:8px}
"""
SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('th').forEach(function(th,i){th.addEventListener('click',function(){
    var body=t.tBodies[0],rows=Array.from(body.rows).filter(function(r){return !r.classList.contains('ceiling')});
    var asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';
    rows.sort(function(a,b){var x=a.cells[i].dataset.v,y=b.cells[i].dataset.v;
      var nx=parseFloat(x),ny=parseFloat(y);var c=(isNaN(nx)||isNaN(ny))?String(x).localeCompare(String(y)):nx-ny;
      return asc?c:-c});rows.forEach(function(r){body.appendChild(r)});});});});
document.querySelectorAll('img').forEach(function(im){im.addEventListener('error',function(){
  var s=document.createElement('span');s.className='missing';s.textContent='missing image: '+im.getAttribute('src');
  im.replaceWith(s);});});
"""
COLUMNS = (("top1", "Top-1"), ("ndcg@3", "NDCG@3"), ("mrr", "MRR"), ("spearman", "Spearman"))


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{body}<script>{SORT_JS}</script></body></html>")


def _num(v: object, fmt: str = ".3f") -> str:
    return "" if v is None or (isinstance(v, float) and pd.isna(v)) else format(v, fmt)


def _row(r: pd.Series) -> str:
    ok = r["status"] == "ok"
    cls = "ceiling" if r["kind"] == "ceiling" else "" if ok else "bad"
    cells = [f"<td class='l' data-v='{html.escape(str(r['method']))}'>{html.escape(str(r['method']))}</td>",
             f"<td class='l' data-v='{html.escape(str(r['status']))}'>{html.escape(str(r['status']))}</td>"]
    for m, _ in COLUMNS:
        v = r.get(m)
        if not ok or pd.isna(v):
            cells.append("<td data-v=''>-</td>")
            continue
        lo, hi = r.get(f"{m}_ci_low"), r.get(f"{m}_ci_high")
        ci = f" <span class='ci'>[{_num(lo, '.2f')}, {_num(hi, '.2f')}]</span>" if not pd.isna(lo) else ""
        cells.append(f"<td data-v='{v}'>{_num(v)}{ci}</td>")
    for col in ("cost_s", "speedup"):
        v = r.get(col)
        cells.append(f"<td data-v='{'' if pd.isna(v) else v}'>{'-' if pd.isna(v) else _num(v, '.1f')}</td>")
    reason = "" if ok or pd.isna(r.get("reason")) else str(r.get("reason"))
    cells.append(f"<td class='l reason' data-v='{html.escape(reason)}'>{html.escape(reason)}</td>")
    return f"<tr class='{cls}'>{''.join(cells)}</tr>"


def board_page(name: str, board: pd.DataFrame, power: str, plots: list[tuple[str, str]]) -> str:
    first = board.iloc[0]
    heads = ["method", "status", *(h for _, h in COLUMNS), "cost s", "speedup vs LOGO", "reason"]
    head = "".join(f"<th class='{'l' if h in ('method', 'status', 'reason') else ''}'>{h}</th>" for h in heads)
    rows = "".join(_row(r) for _, r in board.iterrows())
    prov = {k: first.get(k) for k in ("dataset", "preset", "grouping", "n_test", "seed", "ceiling_seeds",
                                      "truth_seeds", "truth_hash", "config_hash", "git_commit", "torch", "diffusers",
                                      "device", "created")}
    prov_rows = "".join(f"<tr><td class='l'>{k}</td><td class='l'>{html.escape(str(v))}</td></tr>"
                        for k, v in prov.items() if not pd.isna(v))
    commands = sorted({str(c) for c in board["command"].dropna()}) if "command" in board else []
    figures = "".join(f"<h3>{html.escape(title)}</h3><img src='{html.escape(src)}' alt='{html.escape(title)}'>"
                      for src, title in plots)
    body = (f"<p><a href='index.html'>all boards</a></p><h1>{html.escape(name)}</h1>"
            f"<p class='power'>{html.escape(power)}</p>"
            f"<p>Metrics on the test queries against the LOGO ground truth, 95% bootstrap CIs in brackets. The "
            f"noise ceiling (a second LOGO study scored against the first) is pinned first: no method can be trusted "
            f"to beat it. Click a column to sort.</p>"
            f"<table class='sortable' id='board'><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
            f"{figures}<h2>Provenance</h2><table>{prov_rows}</table><h2>Reproduce</h2>"
            + "".join(f"<p><code>{html.escape(c)}</code></p>" for c in commands)
            + "<p><code>guda-bench leaderboard publish RUN_DIR</code></p>")
    return _page(f"guda-bench: {name}", body)


def build_site(board_dir: Path, out: Path) -> list[Path]:
    """Write index.html and one page per board CSV of `board_dir` into `out`; return the pages."""
    from guda_bench.errors import BenchError

    boards = [p for p in sorted(Path(board_dir).glob("*.csv")) if is_board(p)]
    if not boards:
        raise BenchError(f"no leaderboards in {board_dir} (publish one with `guda-bench leaderboard publish`)")
    check_output_dir(out, "site folder")
    pages, index_rows = [], []
    for path in boards:
        board = pd.read_csv(path, dtype=TEXT_COLUMNS)
        plots = []
        for suffix, title in PLOTS:
            src = sibling(path, suffix)
            if src.exists():
                shutil.copyfile(src, out / src.name)
                plots.append((src.name, title))
        power = board_power(path, board)
        page = out / f"{path.stem}.html"
        atomic_write_text(page, board_page(path.stem, board, power, plots))
        pages.append(page)
        first = board.iloc[0]
        ok = board[(board["status"] == "ok") & (board["kind"] == "method")]
        index_rows.append(f"<tr><td class='l'><a href='{page.name}'>{html.escape(path.stem)}</a></td>"
                          f"<td class='l'>{html.escape(str(first['dataset']))}</td>"
                          f"<td class='l'>{html.escape(str(first['grouping']))}</td><td>{first['n_test']}</td>"
                          f"<td>{len(ok)}</td><td class='l'>{html.escape(power)}</td></tr>")
    index = _page("guda-bench leaderboards",
                  "<h1>guda-bench leaderboards</h1><p>Which groups of training data made this generated image? "
                  "Every board scores attribution methods against a leave-one-group-out ground truth.</p>"
                  "<table class='sortable'><thead><tr><th class='l'>board</th><th class='l'>dataset</th>"
                  "<th class='l'>grouping</th><th>test queries</th><th>methods ok</th><th class='l'>power</th>"
                  f"</tr></thead><tbody>{''.join(index_rows)}</tbody></table>")
    atomic_write_text(out / "index.html", index)
    return [out / "index.html", *pages]
