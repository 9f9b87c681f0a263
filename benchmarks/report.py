"""The outputs of a run: the terminal table, the Markdown summary (the same cells, then
the inference table of inference_report.py, the per-layer tables of layer_report.py and
the batch sweep's table), the JSON record
(everything, raw times included) and, through chart.py and sweep.py, the PNGs.

A run goes to benchmarks/runs/ (ignored by git) unless it is canonical: then its files
replace the previous canonical run of its device in benchmarks/results/ and its summary
line is appended to benchmarks/results/history.jsonl (write_canonical).
"""
import datetime
import json
import pathlib
import re

from . import chart, history, inference_report, layer_report, sweep

RUNS_DIR = pathlib.Path(__file__).resolve().parent / "runs"        # default, ignored by git
RESULTS_DIR = pathlib.Path(__file__).resolve().parent / "results"  # canonical runs + history
HISTORY = "history.jsonl"
# The files of one run: <device>-<YYYY-MM-DDTHHMM>[-n].{json,md,png} and [-n]-sweep.png;
# test logs and summaries in results/ have other names and are never replaced.
_RUN_FILE = re.compile(r"^(?P<device>[a-z]+)-\d{4}-\d{2}-\d{2}T\d{4}(-\d+)?"
                       r"(\.(json|md|png)|-sweep\.png)$")

COLUMNS = ("case", "layout", "mode", "cnnops ms", "torch ms", "speedup", "cnnops/torch",
           "cnnops rate", "torch rate", "cnnops %limit", "torch %limit",
           "max abs err", "max rel err", "check")
_LEFT = {"case", "layout", "mode"}


def _ms(side):
    """Median, with half the interquartile range as a +-percentage."""
    return f"{side['median_ms']:.2f} ±{50 * side['iqr_rel']:.0f}%"


def _pct(side):
    return "-" if side["peak_fraction"] is None else f"{100 * side['peak_fraction']:.1f}%"


def _rate(row, side):
    """GB/s for memory-bound rows (against the copy bandwidth), else GFLOP/s (against
    the FMA peak)."""
    if row.get("memory_bound"):
        return f"{side['gbs']:.1f} GB/s"
    return f"{side['gflops']:.1f} GFLOP/s"


def row_cells(row):
    head = [row["case"], row["layout"], row["mode"]]
    if row["error"]:
        return head + ["-"] * (len(COLUMNS) - 4) + ["ERROR"]
    c, t, chk = row["cnnops"], row["torch"], row["check"]
    return head + [_ms(c), _ms(t), f"{row['speedup']:.2f}x", f"{row['time_ratio']:.2f}",
                   _rate(row, c), _rate(row, t), _pct(c), _pct(t),
                   f"{chk['max_abs_err']:.1e}", f"{chk['max_rel_err']:.1e}",
                   "ok" if chk["passed"] else "FAIL"]


def header_lines(result):
    m, lim, s = result["machine"], result["limits"], result["settings"]
    budget = s.get("budget", {})
    build = m["cnnops_build"]
    where = m.get("gpu") or f"{m['cpu_model']}, {s['threads']} of {m['cpu_count']} threads"
    return [
        f"device: {m['device']} ({where}); dtype {s['dtype']}; {m['date']}"
        + (f"; malloc: {s['malloc']}" if m["device"] == "cpu" else ""),
        f"torch {m['torch']} (CUDA {m['cuda']}); cnnops {m['cnnops']} "
        f"(cpu isa {build.get('cpu_isa')}, cuda {build.get('cuda')})",
        f"measured peak {lim['peak_gflops']:.1f} GFLOP/s [{lim['peak_method']}]; "
        f"memory bandwidth {lim['mem_bw_gbs']:.1f} GB/s [{lim['mem_bw_method']}]"
        + (f"; best of start and end of run, which differed by up to {100 * lim['drift']:.0f}%"
           if "drift" in lim else ""),
        "speedup = torch ms / cnnops ms (>1: cnnops faster); ms = median ±half IQR; "
        "fwd+bwd FLOPs = 3x fwd; %limit: of the peak (GFLOP/s rows) or of the copy "
        "bandwidth (GB/s rows: max pooling, depthwise); *_dgrad/*_wgrad rows time that "
        "backward pass alone",
        "timing: cnnops and torch take turns in blocks, each of untimed calls (about "
        f"{budget.get('block_ms', 0):.0f} ms, at most {budget.get('max_block', 1)}) then as "
        "many timed ones, "
        "so each timed call runs as in a loop of that library alone; each side has its "
        "own inputs and outputs (benchmarks/timing.py)",
    ]


def footer_line(result):
    s = result["summary"]
    verdict = "all rows passed" if s["failed"] == 0 else f"{s['failed']} row(s) FAILED"
    line = f"{s['rows']} rows in {s['runtime_s']:.0f} s"
    layers = [r for r in result["rows"] if history.family_of(r) == "layers"]
    parts = [f"{len(layers)} layer rows {sum(r.get('wall_s', 0.0) for r in layers):.0f} s"] if layers else []
    if result.get("sweep"):
        parts.append(f"batch sweep {result['sweep'].get('runtime_s', 0.0):.0f} s")
    line += (f" ({', '.join(parts)})" if parts else "") + f"; {verdict} the correctness check"
    if s.get("sweep_failed"):
        line += f"; {s['sweep_failed']} batch sweep point(s) FAILED it"
    return line


def geomean_line(result):
    """The geomean speedup over dense_conv (every conv2d, dgrad, wgrad and conv_transpose2d
    row: the dense convolutions) and over each family with rows, with their row counts."""
    values, rows = history.geomeans(result["rows"]), history.speedups(result["rows"])
    parts = [f"{name} {value:.2f}x ({len(rows[name])})" for name, value in values.items()
             if value is not None]
    return "geomean speedup (rows): " + ("; ".join(parts) if parts else "-")


def table(result):
    cells = [list(COLUMNS)] + [row_cells(r) for r in result["rows"]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]

    def line(row):
        return "  ".join(v.ljust(w) if name in _LEFT else v.rjust(w)
                         for name, v, w in zip(COLUMNS, row, widths))
    rule = "-" * len(line(cells[0]))
    extra = inference_report.text_lines(result) + layer_report.text_lines(result)
    if result.get("sweep"):
        extra += sweep.text_lines(result["sweep"])
    return "\n".join(header_lines(result) + [rule, line(cells[0]), rule]
                     + [line(r) for r in cells[1:]] + [rule] + extra
                     + [footer_line(result), geomean_line(result)])


def markdown(result):
    lines = ["# cnnops benchmarks", ""] + [f"- {h}" for h in header_lines(result)]
    lines += [f"- {geomean_line(result)}", ""]
    lines.append("| " + " | ".join(COLUMNS) + " |")
    lines.append("|" + "|".join(":--" if c in _LEFT else "--:" for c in COLUMNS) + "|")
    lines += ["| " + " | ".join(row_cells(r)) + " |" for r in result["rows"]]
    lines += ["", footer_line(result), ""] + inference_report.markdown_lines(result)
    lines += layer_report.markdown_lines(result)
    if result.get("sweep"):
        lines += sweep.markdown_lines(result["sweep"])
    errors = [r for r in result["rows"] if r["error"]]
    if errors:
        lines += ["## Errors", ""] + [f"- {r['case']} {r['layout']} {r['mode']}: {r['error']}"
                                      for r in errors] + [""]
    return "\n".join(lines)


def output_stem(result, out_dir):
    """<device>-<YYYY-MM-DDTHHMM>, with a suffix if a run of the same minute exists."""
    date = datetime.datetime.fromisoformat(result["machine"]["date"])
    stem = f"{result['machine']['device']}-{date:%Y-%m-%dT%H%M}"
    candidate, n = stem, 2
    while (out_dir / f"{candidate}.json").exists():
        candidate, n = f"{stem}-{n}", n + 1
    return candidate


def write_outputs(result, out_dir):
    """Writes <stem>.json, .md, .png (and -sweep.png with a sweep) under out_dir; returns
    {kind: path} of those written."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / output_stem(result, out_dir)
    paths = dict(json=stem.with_suffix(".json"), markdown=stem.with_suffix(".md"))
    paths["json"].write_text(json.dumps(result, indent=1) + "\n")
    paths["markdown"].write_text(markdown(result))
    png = chart.save_speedup_chart(result, stem.with_suffix(".png"))
    if png is not None:
        paths["png"] = png
    sweep_png = sweep.save_sweep_chart(result, stem.parent / f"{stem.name}-sweep.png")
    if sweep_png is not None:
        paths["sweep png"] = sweep_png
    return paths


def run_files(out_dir, device):
    """The files of the runs of device in out_dir (see _RUN_FILE), sorted."""
    out_dir = pathlib.Path(out_dir)
    if not out_dir.is_dir():
        return []
    return sorted(p for p in out_dir.iterdir()
                  if (m := _RUN_FILE.match(p.name)) and m["device"] == device)


def write_canonical(result, results_dir=RESULTS_DIR):
    """Writes the run into results_dir, deletes the files of the device's previous runs
    there (so the folder holds one run per device) and appends the run's line to
    history.jsonl. Returns {kind: path} of those written, with "removed": [paths]."""
    results_dir = pathlib.Path(results_dir)
    paths = write_outputs(result, results_dir)
    new = set(paths.values())
    removed = [p for p in run_files(results_dir, result["machine"]["device"]) if p not in new]
    for p in removed:
        p.unlink()
    paths["history"] = results_dir / HISTORY
    history.append(paths["history"], history.history_line(result, run=paths["json"].stem))
    paths["removed"] = removed
    return paths
