"""Inference rows (family "inference"): a whole classifier in eval mode, as a torch user
would run it, against cnnops.optimize_for_inference of the same model.

Each row times four variants of one model with the same weights, in interleaved blocks
(timing.interleaved_sides):

    eager_nchw           the torch model under torch.inference_mode(), NCHW input
    eager_channels_last  the same with the model and the input in channels_last
    compile              torch.compile with torch._inductor.config.freezing = True, under
                         torch.no_grad(); its first call (the compile) is timed on its own
                         (compile_s); a failing compile is reported in the row (compile_error)
                         and leaves the other variants' numbers; --no-compile leaves it out
    cnnops               cnnops.optimize_for_inference(cnnops.convert(copy of the torch
                         model), ...) (a cnnops.models model is optimised itself; its torch
                         side is cnnops.to_torch's twin), model and input in the row's layout

The row's "torch" side is the faster eager variant (torch_variant), so its speedup (eager
ms / cnnops ms) is what the family's geomean and `compare` use; speedup_vs_nchw and
speedup_vs_compile are beside it. The check: cnnops' logits against eager NCHW's, max abs
error <= 1e-4 x max |torch logits| (check.same_dtype_check). BatchNorm layers get random
affine weights and running statistics of their own activations, so that their folding
into the convolutions is checked (BatchNorm's defaults, mean 0 and variance 1, make an
eval-mode BatchNorm almost the identity). Without cnnops.optimize_for_inference the rows
are errors: nothing is timed.
"""
import contextlib
import copy
import time
import traceback
from dataclasses import asdict, dataclass, replace

import torch

import cnnops
from cnnops import models
from cnnops._torchvision import load_torchvision

from . import check, runner, timing
from .layouts import LAYOUTS
from .model_cases import _layer_flop

EAGER = ("eager_nchw", "eager_channels_last")
VARIANTS = EAGER + ("compile", "cnnops")


@dataclass(frozen=True)
class InferenceCase:
    name: str
    source: str              # "torchvision" (torchvision.models) or "cnnops" (cnnops.models)
    builder: str             # the model function's name there
    input_shape: tuple       # N, C, H, W
    num_classes: int = 1000
    op: str = "inference"
    modes = ("fwd",)
    # Few long repetitions (resnet50 at batch 16 is about 130 GFLOP a call, times four
    # variants): the run's budget capped at 5 s (the default budget; it was 3 s, but
    # whole-model times on our VM swing by 15% and more from one call to the next, and
    # more calls steady the medians), at least 3 timed calls, one warm-up.
    budget_seconds = 5.0
    budget_min_reps = 3
    budget_warmup = 1

    def plan_layouts(self, layouts):
        """One row per case: cnnops in channels_last when the run has it (the eager variants
        time both layouts in any case)."""
        return ["channels_last"] if "channels_last" in layouts else list(layouts[:1])

    def describe(self):
        return asdict(self)

    def run_row(self, layout, mode, settings):
        return run_row(self, layout, settings)


INFERENCE_CASES = [
    InferenceCase("infer_resnet50_b1_224", "torchvision", "resnet50", (1, 3, 224, 224)),
    InferenceCase("infer_resnet50_b16_224", "torchvision", "resnet50", (16, 3, 224, 224)),
    InferenceCase("infer_mobilenet_v2_b1_224", "torchvision", "mobilenet_v2", (1, 3, 224, 224)),
    InferenceCase("infer_efficientnet_b0_b1_224", "torchvision", "efficientnet_b0",
                  (1, 3, 224, 224)),
    InferenceCase("infer_xception_b1_299", "cnnops", "xception", (1, 3, 299, 299)),
]


def case_name(builder, input_shape):
    n, _, h, w = input_shape
    return f"infer_{builder}_b{n}_{h}" + ("" if w == h else f"x{w}")


def resized(cases, size=None, max_batch=None):
    """cases with each inference row's input made size x size and its batch at most
    max_batch (None: as it is), renamed to match; of rows that become the same, the first
    is kept. For smoke runs (--inference-size, --inference-max-batch)."""
    out, names = [], set()
    for case in cases:
        if isinstance(case, InferenceCase):
            n, c, h, w = case.input_shape
            shape = (min(n, max_batch or n), c, size or h, size or w)
            case = replace(case, name=case_name(case.builder, shape), input_shape=shape)
            if case.name in names:
                continue
            names.add(case.name)
        out.append(case)
    return out


# ----------------------------------------------------------------------------- models

def randomise_batch_norm(model, sample_shape, seed=0, samples=8):
    """Random BatchNorm affine weights (scale in [0.5, 1.5), shift N(0, 0.2^2)), then
    running statistics of the layers' own activations: one training-mode pass, no
    gradients, over `samples` random samples of sample_shape (C, H, W), averaged (momentum
    None; eight samples, so that a 1x1 feature map still gives a usable variance). Leaves
    the model in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    with torch.no_grad():
        for m in norms:
            if m.affine:
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=gen))
            m.reset_running_stats()
            m.momentum = None
        model.train()
        model(torch.randn((samples, *sample_shape), generator=gen))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    return model.eval()


def build_models(case):
    """(torch model, cnnops model before optimisation) with the same weights, in eval mode,
    float32 on the CPU."""
    torch.manual_seed(0)
    if case.source == "cnnops":
        net = models.get_model(case.builder, num_classes=case.num_classes)
        randomise_batch_norm(net, case.input_shape[1:])
        return cnnops.to_torch(net).eval(), net
    if case.source != "torchvision":
        raise ValueError(f"{case.name}: unknown model source {case.source!r}")
    tv = load_torchvision()
    if tv is None:
        raise RuntimeError("torchvision is not installed (pip install torchvision)")
    net = getattr(tv.models, case.builder)(weights=None, num_classes=case.num_classes)
    randomise_batch_norm(net, case.input_shape[1:])
    return net, cnnops.convert(copy.deepcopy(net)).eval()


def make_input(case, device, dtype, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(case.input_shape, generator=gen).to(device=device, dtype=dtype)


# ----------------------------------------------------------------------------- variants

def eager_step(model, x):
    def step():
        with torch.inference_mode():
            return model(x)
    return step


def counted_call(model, x):
    """model(x) under inference_mode, and the FLOPs of its convolution and linear layers
    (model_cases' count, with forward hooks)."""
    total = []
    hooks = [m.register_forward_hook(lambda m, i, o: total.append(_layer_flop(m, i, o)))
             for m in model.modules()]
    try:
        y = eager_step(model, x)()
    finally:
        for h in hooks:
            h.remove()
    return y, sum(total)


@contextlib.contextmanager
def inductor_freezing():
    """torch._inductor.config.freezing = True for the duration (restored after)."""
    import torch._inductor.config as inductor_config
    saved = inductor_config.freezing
    inductor_config.freezing = True
    try:
        yield
    finally:
        inductor_config.freezing = saved


def compiled_step(model, x, sync):
    """(step, first output, seconds of the first call: the compile) of torch.compile(model)."""
    torch._dynamo.reset()  # one compiled model at a time: no cache limits, memory freed
    compiled = torch.compile(model)

    def step():
        with torch.no_grad():
            return compiled(x)
    start = time.perf_counter()
    y = step()
    sync()
    return step, y, time.perf_counter() - start


def optimizer():
    """cnnops.optimize_for_inference; RuntimeError when this cnnops has none."""
    optimize = getattr(cnnops, "optimize_for_inference", None)
    if optimize is None:
        raise RuntimeError("cnnops.optimize_for_inference is missing (cnnops/inference has "
                           "not landed in this checkout): no inference row can be timed")
    return optimize


def optimise(net, x, layout, sync):
    """(optimised model, seconds) of cnnops.optimize_for_inference."""
    optimize = optimizer()
    start = time.perf_counter()
    model = optimize(net, channels_last=layout == "channels_last", example_inputs=(x,))
    sync()
    return model, time.perf_counter() - start


# ----------------------------------------------------------------------------- the row

def run_row(case, layout, settings):
    """The row of one case: the check, the four variants' times and speedups; an exception
    makes it an error row (a failing compile only empties the compile column)."""
    dtype = runner.DTYPES[settings.dtype]
    row = dict(case=case.name, op=case.op, layout=layout, mode="fwd", dtype=settings.dtype,
               device=settings.device, params=case.describe(), problem=None,
               memory_bound=False, compile_s=None, compile_error=None)
    compiling = settings.inference_compile
    try:
        optimizer()  # before building anything
        with inductor_freezing() if compiling else contextlib.nullcontext():
            steps, outputs = build_variants(case, layout, settings, dtype, row)
            row["check"] = row_check(outputs, dtype)
            budget = runner.row_budget(case, settings.budget)
            timer = timing.timer_for(settings.device)
            # The compiled model is timed on its own, after the others: inductor's
            # kernels run on an OpenMP pool of their own whose threads keep spinning
            # after each call, and taking turns with them slowed whichever variant
            # came next (2 cores: cnnops' resnet50 rows went from 45 to 60 ms, +-14%).
            eager_like = {k: v for k, v in steps.items() if k != "compile"}
            times = dict(zip(eager_like, timing.interleaved_sides(list(eager_like.values()),
                                                                  timer, budget)))
            if "compile" in steps:
                times["compile"] = timing.interleaved_sides([steps["compile"]], timer, budget)[0]
    except Exception as exc:  # one failing row must not lose the others
        row.update(error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(),
                   passed=False)
        return row
    finally:
        if compiling:
            torch._dynamo.reset()
    set_times(row, {k: times[k] for k in steps})
    row["error"] = None
    row["passed"] = row["check"]["passed"]
    return row


def build_variants(case, layout, settings, dtype, row):
    """({variant: step}, {variant: first output}) in VARIANTS order; fills the row's flop,
    bytes, optimize_s, compile_s or compile_error and inference_report."""
    device = settings.device
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    twin, net = build_models(case)
    twin, net = (m.to(device=device, dtype=dtype) for m in (twin, net))
    x = make_input(case, device, dtype)
    x_cnnops = x.contiguous(memory_format=LAYOUTS[layout])
    optimised, row["optimize_s"] = optimise(net, x_cnnops, layout, sync)
    report = getattr(optimised, "inference_report", None)
    row["inference_report"] = None if report is None else str(report)

    steps, outputs = {}, {}
    outputs["eager_nchw"], row["flop"] = counted_call(twin, x)
    steps["eager_nchw"] = eager_step(twin, x)
    twin_cl = copy.deepcopy(twin).to(memory_format=torch.channels_last)
    steps["eager_channels_last"] = eager_step(twin_cl, x.contiguous(memory_format=torch.channels_last))
    outputs["eager_channels_last"] = steps["eager_channels_last"]()
    if settings.inference_compile:
        try:
            steps["compile"], outputs["compile"], row["compile_s"] = compiled_step(
                copy.deepcopy(twin), x, sync)
        except Exception as exc:  # the row keeps its other variants
            row["compile_error"] = f"{type(exc).__name__}: {exc}".strip()[:2000]
    steps["cnnops"] = eager_step(optimised, x_cnnops)
    outputs["cnnops"] = steps["cnnops"]()

    params = sum(p.numel() for p in twin.parameters())
    row["bytes"] = (params + x.numel()) * x.element_size()  # as ModelCase: a lower bound
    row["arithmetic_intensity"] = row["flop"] / row["bytes"]
    return steps, outputs


def row_check(outputs, dtype):
    """cnnops' output against eager NCHW's (the row's pass/fail), with the other torch
    variants' own differences from it for scale (torch_variant_errors)."""
    ref = outputs["eager_nchw"]
    result = check.same_dtype_check((outputs["cnnops"],), (ref,), ("output",), dtype)
    result["reference"] = f"torch eager NCHW {str(dtype)[6:]}"
    others = [v for v in ("eager_channels_last", "compile") if v in outputs]
    result["torch_variant_errors"] = check.errors([outputs[v] for v in others],
                                                  [ref] * len(others), others)
    return result


def set_times(row, times):
    """The variants' statistics, the best eager one as the row's "torch" side, and the
    speedups of cnnops against it, against eager NCHW and against the compiled model."""
    stats = {name: runner.side_stats(t, row["flop"], row["bytes"]) for name, t in times.items()}
    row["variants"] = {name: stats.get(name) for name in VARIANTS}
    best = min(EAGER, key=lambda name: stats[name]["median_ms"])
    cnnops_ms = stats["cnnops"]["median_ms"]
    row.update(torch_variant=best, torch=stats[best], cnnops=stats["cnnops"],
               speedup=stats[best]["median_ms"] / cnnops_ms,
               speedup_vs_nchw=stats["eager_nchw"]["median_ms"] / cnnops_ms,
               speedup_vs_compile=(stats["compile"]["median_ms"] / cnnops_ms
                                   if "compile" in stats else None))
    row["time_ratio"] = 1.0 / row["speedup"]
    row["speedup_paired"] = timing.summarize(timing.paired_ratios(times[best], times["cnnops"]),
                                             suffix="")
