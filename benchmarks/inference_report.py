"""The inference rows (inference_cases.py) as their own table: per model and batch, the ms
per batch of torch eager (NCHW and channels_last), torch.compile with freezing (and its
compile time), cnnops optimised, and cnnops' speedups against them.
"""
from . import history

HEAD = ["model", "batch", "input", "eager NCHW ms", "eager channels_last ms",
        "compile+freezing ms", "compile s", "cnnops ms", "vs best eager", "vs eager NCHW",
        "vs compile", "max abs err (tol)", "check"]
_LEFT = (0, 1, 2)


def inference_rows(rows):
    return [r for r in rows if history.family_of(r) == "inference"]


def _ms(stats):
    return "-" if stats is None else f"{stats['median_ms']:.2f} ±{50 * stats['iqr_rel']:.0f}%"


def _x(value):
    return "-" if value is None else f"{value:.2f}x"


def _compile_cells(row):
    """(ms, compile s) of the compile column: '-' when left out, ERROR when it failed."""
    if row.get("compile_error"):
        return "ERROR", "-"
    compile_s = row.get("compile_s")
    return _ms(row["variants"].get("compile")), "-" if compile_s is None else f"{compile_s:.1f}"


def row_cells(row):
    params = row.get("params") or {}
    shape = params.get("input_shape") or ["?"] * 4
    head = [params.get("builder", row["case"]), str(shape[0]), f"{shape[2]}x{shape[3]}"]
    if row.get("error"):
        return head + ["-"] * (len(HEAD) - 4) + ["ERROR"]
    v, chk = row["variants"], row["check"]
    compile_ms, compile_s = _compile_cells(row)
    best = "NCHW" if row["torch_variant"] == "eager_nchw" else "channels_last"
    return head + [_ms(v["eager_nchw"]), _ms(v["eager_channels_last"]), compile_ms, compile_s,
                   _ms(v["cnnops"]), f"{row['speedup']:.2f}x ({best})",
                   _x(row["speedup_vs_nchw"]), _x(row["speedup_vs_compile"]),
                   f"{chk['max_abs_err']:.1e} ({chk['tolerance']:.0e} x max)",
                   "ok" if chk["passed"] else "FAIL"]


def _notes(rows):
    """One line per row whose compile failed or that errored."""
    notes = [f"{r['case']}: torch.compile failed: {r['compile_error'].splitlines()[0]}"
             for r in rows if r.get("compile_error")]
    return notes + [f"{r['case']}: {r['error']}" for r in rows if r.get("error")]


def markdown_lines(result):
    rows = inference_rows(result["rows"])
    if not rows:
        return []
    compiled = result.get("settings", {}).get("inference_compile", True)
    lines = ["## Inference", "",
             "Whole classifiers in eval mode, same weights in every column, ms per batch "
             "(median ±half IQR). eager: the torch model under torch.inference_mode(), NCHW, "
             "or model and input in channels_last; compile: torch.compile with "
             "torch._inductor.config.freezing under torch.no_grad() (compile s: its first "
             "call)" + ("" if compiled else " - left out of this run (--no-compile)")
             + "; cnnops: cnnops.optimize_for_inference of the model (BatchNorm folded, "
             "activations and residual adds fused, weights packed), model and input in the "
             "row's layout. vs: that column's ms / cnnops ms (>1: cnnops faster); best eager: "
             "the faster eager layout (the family's geomean uses it). Check: cnnops' logits "
             "against eager NCHW's, max abs error <= tol x max |logits|.", ""]
    lines += ["| " + " | ".join(HEAD) + " |",
              "|" + "|".join(":--" if i in _LEFT else "--:" for i in range(len(HEAD))) + "|"]
    lines += ["| " + " | ".join(row_cells(r)) + " |" for r in rows] + [""]
    notes = _notes(rows)
    return lines + ([f"- {n}" for n in notes] + [""] if notes else [])


def text_lines(result):
    """The table, aligned, for the terminal."""
    rows = inference_rows(result["rows"])
    if not rows:
        return []
    cells = [HEAD] + [row_cells(r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEAD))]
    table = ["  ".join(v.ljust(w) if i in _LEFT else v.rjust(w)
                       for i, (v, w) in enumerate(zip(c, widths))).rstrip() for c in cells]
    return (["inference rows (ms per batch; vs = that column's ms / cnnops ms):"] + table
            + [f"  {n}" for n in _notes(rows)])
