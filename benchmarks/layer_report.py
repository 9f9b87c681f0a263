"""The per-layer rows (layer_cases.py) per model: which layers a model's time is made of.

A group is one model at one batch size, layout and mode. Its time-weighted total is the
sum over its distinct layers of count x median ms (count: how often the layer runs in
one forward pass), per library: the model's dense convolutions, without its other
layers (batch norm, activations, pooling, depthwise convolutions, the classifier).
"""
from . import history


def layer_groups(rows):
    """{(model, batch, layout, mode): [rows]} of the layer rows, in the rows' order."""
    groups = {}
    for row in rows:
        params = row.get("params") or {}
        if history.family_of(row) == "layers" and params.get("model"):
            key = (params["model"], params["input_shape"][0], row["layout"], row["mode"])
            groups.setdefault(key, []).append(row)
    return groups


def totals(rows):
    """Time-weighted totals of a group: count x median ms summed per library (timed rows
    only), their ratio, how many layers (distinct and in all) and how many are missing."""
    timed = [r for r in rows if not r.get("error")]
    out = dict(layers=len(rows), convs=sum(r["params"]["count"] for r in rows),
               missing=len(rows) - len(timed))
    for side in ("cnnops", "torch"):
        out[f"{side}_ms"] = sum(r["params"]["count"] * r[side]["median_ms"] for r in timed)
    out["speedup"] = out["torch_ms"] / out["cnnops_ms"] if out["cnnops_ms"] else None
    return out


def _model_row(result, model, batch, mode, layout):
    """The suite's whole-model row of the same model, batch, layout and mode, if any."""
    for row in result["rows"]:
        params = row.get("params") or {}
        if (row["op"] == "model" and params.get("builder") == model and not row.get("error")
                and params["input_shape"][0] == batch and (row["layout"], row["mode"]) == (layout, mode)):
            return row
    return None


def _pct(side):
    return "-" if side.get("peak_fraction") is None else f"{100 * side['peak_fraction']:.1f}%"


def _short(row, model, batch):
    return row["case"].removeprefix(f"layer_{model}_b{batch}_")


def summary_cells(result):
    """One line per group: model, batch, layout, mode, layers, totals, speedup, and the
    layer that costs cnnops the most time beyond torch's (count x difference)."""
    cells = []
    for (model, batch, layout, mode), rows in layer_groups(result["rows"]).items():
        t = totals(rows)
        timed = [r for r in rows if not r.get("error")]
        worst = max(timed, key=lambda r: r["params"]["count"]
                    * (r["cnnops"]["median_ms"] - r["torch"]["median_ms"]), default=None)
        cells.append([model, str(batch), layout, mode, f"{t['layers']} ({t['convs']})",
                      f"{t['cnnops_ms']:.2f}", f"{t['torch_ms']:.2f}",
                      "-" if t["speedup"] is None else f"{t['speedup']:.2f}x",
                      "-" if worst is None else _short(worst, model, batch)])
    return cells


SUMMARY_HEAD = ["model", "batch", "layout", "mode", "layers (convs)", "cnnops Σ ms", "torch Σ ms",
                "speedup", "most time lost"]
LAYER_HEAD = ["layer", "count", "cnnops ms", "torch ms", "speedup", "cnnops %peak", "torch %peak",
              "count × cnnops ms", "share", "count × (cnnops − torch) ms"]


def _layer_cells(rows, model, batch, total_ms):
    cells = []
    timed = sorted((r for r in rows if not r.get("error")),
                   key=lambda r: -r["params"]["count"] * r["cnnops"]["median_ms"])
    for r in timed:
        n, c, t = r["params"]["count"], r["cnnops"], r["torch"]
        cells.append([_short(r, model, batch), str(n), f"{c['median_ms']:.3f}", f"{t['median_ms']:.3f}",
                      f"{r['speedup']:.2f}x", _pct(c), _pct(t), f"{n * c['median_ms']:.2f}",
                      f"{100 * n * c['median_ms'] / total_ms:.0f}%" if total_ms else "-",
                      f"{n * (c['median_ms'] - t['median_ms']):+.2f}"])
    cells += [[_short(r, model, batch), str(r["params"]["count"])] + ["ERROR"] + ["-"] * 7
              for r in rows if r.get("error")]
    return cells


def _table(head, cells, left=(0,)):
    return (["| " + " | ".join(head) + " |",
             "|" + "|".join(":--" if i in left else "--:" for i in range(len(head))) + "|"]
            + ["| " + " | ".join(c) + " |" for c in cells])


def markdown_lines(result):
    """The Markdown section: the groups' totals, then each group's layers, costliest first."""
    groups = layer_groups(result["rows"])
    if not groups:
        return []
    lines = ["## Per-layer rows by model", "",
             "Each distinct dense convolution of the model (groups = 1: no depthwise) at the "
             "input size of its model row; count = times it runs in one forward pass; Σ ms = "
             "Σ count × median ms (the model's dense convolutions only). Most time lost: the "
             "layer with the largest count × (cnnops − torch) ms.", ""]
    lines += _table(SUMMARY_HEAD, summary_cells(result), left=(0, 1, 2, 3, 8)) + [""]
    for (model, batch, layout, mode), rows in groups.items():
        t = totals(rows)
        resolution = rows[0]["params"].get("resolution") or ["?", "?"]
        lines += [f"### {model}, batch {batch}, {layout}, {mode} ({resolution[0]}x{resolution[1]} "
                  f"input)", "",
                  f"Σ count × ms: cnnops {t['cnnops_ms']:.2f} ms, torch {t['torch_ms']:.2f} ms"
                  + ("" if t["speedup"] is None else f" ({t['speedup']:.2f}x)")
                  + f"; {t['layers']} distinct layers, {t['convs']} convolutions per pass"
                  + (f"; {t['missing']} not timed (errors)" if t["missing"] else "") + "."]
        whole = _model_row(result, model, batch, mode, layout)
        if whole is not None:
            c_ms, t_ms = whole["cnnops"]["median_ms"], whole["torch"]["median_ms"]
            lines[-1] += f" The whole model ({whole['case']}): cnnops {c_ms:.2f} ms, torch {t_ms:.2f} ms."
        lines += [""] + _table(LAYER_HEAD, _layer_cells(rows, model, batch, t["cnnops_ms"])) + [""]
    return lines


def text_lines(result):
    """The groups' totals, for the terminal."""
    cells = summary_cells(result)
    if not cells:
        return []
    rows = [SUMMARY_HEAD] + cells
    widths = [max(len(r[i]) for r in rows) for i in range(len(SUMMARY_HEAD))]
    return ["per-layer rows by model (Σ = count x median ms over the model's distinct dense convs):"] + [
        "  ".join(v.ljust(w) if i < 4 or i == 8 else v.rjust(w)
                  for i, (v, w) in enumerate(zip(r, widths))).rstrip() for r in rows]
