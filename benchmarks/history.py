"""One summary line per canonical run, appended to benchmarks/results/history.jsonl, so
the trend stays visible after each canonical run replaces the previous one's files.

A line: when and where the run was made, the measured peak, and the geometric mean of
the speedup (torch time / cnnops time) over each op family's rows, and over the dense
convolutions (dense_conv: the conv2d and conv_transpose2d families together).
"""
import json
import math

# The families of history.jsonl, in its order. conv2d includes its *_dgrad / *_wgrad rows;
# the fixedcost_* rows (per-call overhead on tiny inputs) are a family of their own, so
# that adding them leaves the ops' trends comparable with earlier lines; so are the layer_*
# rows (each distinct dense convolution of a model, benchmarks/layer_cases.py), and the
# inference rows (a whole classifier optimised by cnnops.optimize_for_inference against the
# faster of torch's eager layouts, benchmarks/inference_cases.py).
FAMILIES = ("conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "depthwise", "separable",
            "models", "fixed_cost", "layers", "inference")
# Geomeans over several families: dense_conv is every conv2d (with its dgrad and wgrad
# passes) and conv_transpose2d row; not depthwise, models, fixed-cost or layer rows.
AGGREGATES = {"dense_conv": ("conv2d", "conv_transpose2d")}


def family_of(row):
    """The family of a result row (None for an op no family claims)."""
    case = str(row.get("case", ""))
    if case.startswith("fixedcost_"):
        return "fixed_cost"
    if case.startswith("layer_"):
        return "layers"
    op = row.get("op")
    if op == "conv2d":
        params = row.get("params") or {}
        weight = params.get("weight_shape") or (0, 0)
        if params.get("groups", 1) > 1 and weight[1] == 1:
            return "depthwise"
        return "conv2d"
    return {"conv2d_dgrad": "conv2d", "conv2d_wgrad": "conv2d",
            "conv_transpose2d": "conv_transpose2d", "max_pool2d": "max_pool2d",
            "avg_pool2d": "avg_pool2d", "adaptive_avg_pool2d": "avg_pool2d",
            "depthwise_conv2d": "depthwise", "separable_conv2d": "separable",
            "model": "models", "inference": "inference"}.get(op)


def geomean(values):
    values = list(values)
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


def speedups(rows):
    """{family or aggregate: [speedup of each timed row]}, aggregates first."""
    by_family = {f: [] for f in FAMILIES}
    for row in rows:
        family = family_of(row)
        if family and not row.get("error") and row.get("speedup"):
            by_family[family].append(row["speedup"])
    aggregates = {a: [v for f in fams for v in by_family[f]] for a, fams in AGGREGATES.items()}
    return dict(aggregates, **by_family)


def geomeans(rows, digits=3):
    """{family or aggregate: geomean speedup, rounded, or None without rows}."""
    return {f: None if not v else round(geomean(v), digits) for f, v in speedups(rows).items()}


def history_line(result, run=None, commit=None):
    """The history.jsonl record (a dict) of a results JSON (runner.run_suite's dict).

    run: the results file's stem (cpu-2026-11-23T0116); commit: the code's commit,
    default the one the run recorded (machine.commit), if any."""
    m, s, summary = result["machine"], result["settings"], result["summary"]
    malloc = s.get("malloc")
    return dict(
        date=m["date"], run=run, device=m["device"],
        machine=m.get("gpu") or m["cpu_model"],
        cpu=f"{m['cpu_model']}, {s.get('threads', m.get('torch_threads'))} of "
            f"{m['cpu_count']} threads",
        commit=commit or m.get("commit"), torch=m["torch"], dtype=s["dtype"],
        layouts=list(s["layouts"]), budget_s=(s.get("budget") or {}).get("seconds"),
        malloc=malloc.split()[0] if malloc and m["device"] == "cpu" else None,
        rows=summary["rows"], failed=summary["failed"],
        peak_gflops=round(result["limits"]["peak_gflops"], 1),
        geomean_speedup=geomeans(result["rows"]),
    )


def append(path, line):
    """Appends one record to a JSON-lines file."""
    with open(path, "a") as f:
        f.write(json.dumps(line) + "\n")


def read(path):
    with open(path) as f:
        return [json.loads(text) for text in f if text.strip()]
