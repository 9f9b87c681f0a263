"""python -m benchmarks compare OLD.json NEW.json: per-row changes of cnnops' time.

A row is a regression when its cnnops median grew by more than its noise: the larger
of a threshold (10%) and the two runs' relative interquartile ranges added together.
torch's change is printed beside it: when torch moved as much, suspect the machine.
Rows are matched on (case, layout, mode, dtype, device). Then the geomean speedup of
dense_conv and of each family, old and new, over the rows both runs timed.
"""
import argparse
import json

from . import history

THRESHOLD = 0.10


def _key(row):
    return (row["case"], row["layout"], row["mode"], row["dtype"], row["device"])


def _timed(row):
    return row is not None and not row.get("error")


def compare_rows(old, new, threshold=THRESHOLD):
    """One entry for a pair of matching rows (either may be None)."""
    entry = dict(key=_key(old or new), status="", old_ms=None, new_ms=None, change=None,
                 torch_change=None, noise=None)
    if not (_timed(old) and _timed(new)):
        entry["status"] = ("only in new" if old is None else "only in old" if new is None
                           else "error")
        return entry
    o, n = old["cnnops"], new["cnnops"]
    entry.update(old_ms=o["median_ms"], new_ms=n["median_ms"],
                 change=n["median_ms"] / o["median_ms"] - 1,
                 torch_change=new["torch"]["median_ms"] / old["torch"]["median_ms"] - 1,
                 noise=max(threshold, o["iqr_rel"] + n["iqr_rel"]))
    if entry["change"] > entry["noise"]:
        entry["status"] = "REGRESSION"
    elif entry["change"] < -entry["noise"]:
        entry["status"] = "faster"
    else:
        entry["status"] = "same"
    if not new["passed"]:
        entry["status"] += " +CHECK FAILED"
    return entry


def compare_results(old, new, threshold=THRESHOLD):
    """Entries for every row of either result, in the new result's order first."""
    old_rows = {_key(r): r for r in old["rows"]}
    new_rows = {_key(r): r for r in new["rows"]}
    keys = list(new_rows) + [k for k in old_rows if k not in new_rows]
    return [compare_rows(old_rows.get(k), new_rows.get(k), threshold) for k in keys]


def regressions(entries):
    return [e for e in entries if e["status"].startswith("REGRESSION") or "CHECK" in e["status"]]


def _pct(v):
    return "-" if v is None else f"{100 * v:+.1f}%"


def _ms(v):
    return "-" if v is None else f"{v:.2f}"


def format_entries(entries):
    head = ("case", "layout", "mode", "old ms", "new ms", "change", "noise", "torch change",
            "status")
    cells = [head] + [(*e["key"][:3], _ms(e["old_ms"]), _ms(e["new_ms"]), _pct(e["change"]),
                       "-" if e["noise"] is None else f"±{100 * e['noise']:.0f}%",
                       _pct(e["torch_change"]), e["status"]) for e in entries]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    lines = ["  ".join(v.ljust(w) if i < 3 or i == 8 else v.rjust(w)
                       for i, (v, w) in enumerate(zip(c, widths))) for c in cells]
    n = len(regressions(entries))
    return "\n".join(lines + [f"{n} regression(s) beyond noise" if n else "no regressions"])


def geomean_entries(old, new):
    """(name, old geomean, new geomean, rows) for dense_conv and each family with rows,
    over the rows timed in both results (so a filtered or extended run still compares)."""
    old_rows = {_key(r): r for r in old["rows"] if _timed(r)}
    new_rows = {_key(r): r for r in new["rows"] if _timed(r)}
    common = [k for k in new_rows if k in old_rows]
    before = history.speedups(old_rows[k] for k in common)
    after = history.speedups(new_rows[k] for k in common)
    return [(name, history.geomean(before[name]), history.geomean(after[name]), len(after[name]))
            for name in after if after[name] and before[name]]


def format_geomeans(entries):
    if not entries:
        return "geomean speedup: no family has rows timed in both runs"
    lines = ["geomean speedup (torch ms / cnnops ms) over the rows both runs timed:"]
    lines += [f"  {name:<16} {a:.3f} -> {b:.3f} ({100 * (b / a - 1):+.1f}%, {n} rows)"
              for name, a, b, n in entries]
    return "\n".join(lines)


def main(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks compare",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("old", help="the baseline JSON result")
    parser.add_argument("new", help="the JSON result to judge")
    parser.add_argument("--threshold", type=float, default=THRESHOLD,
                        help="minimum relative change counted as real (default 0.10)")
    args = parser.parse_args(argv)
    with open(args.old) as f_old, open(args.new) as f_new:
        old, new = json.load(f_old), json.load(f_new)
    entries = compare_results(old, new, args.threshold)
    print(format_entries(entries))
    print(format_geomeans(geomean_entries(old, new)))
    return 1 if regressions(entries) else 0
