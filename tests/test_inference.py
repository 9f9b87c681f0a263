"""cnnops.optimize_for_inference: BatchNorm folding, epilogue fusion (activation, residual
add, activation after the add), the tracing fallback, channels_last, the report, and
torch.compile / torch.export of the result.

Every check compares the optimised copy with the original model in eval mode on the same
input: max |optimised - original| <= 1e-4 * max |original| in float32. BatchNorms get random
running statistics and affine parameters, so that a wrong fold shows. The fused counts are
asserted too, so that a test fails when fusion silently stops happening.
"""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnops
import cnnops.functional as cf
from cnnops import models
from cnnops import nn as cnn
from cnnops._ops import direct
from cnnops._torchvision import load_torchvision
from cnnops.inference import FusedConv2d, FusedSeparableConv2d, InferenceModel

TV = load_torchvision()
needs_torchvision = pytest.mark.skipif(TV is None, reason="torchvision is not installed")


# ----------------------------------------------------------------------------- helpers

@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: these tests check values and fusion, not threading (the kernels'
    own tests do), and on a shared 2-core machine OpenMP workers waiting for busy cores made
    this file several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def randomize_batchnorms(model, seed=1):
    """Random running statistics and affine parameters for every BatchNorm2d."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if not isinstance(m, nn.BatchNorm2d):
                continue
            n = m.num_features
            if m.running_mean is not None:
                m.running_mean.copy_(0.1 * torch.randn(n, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(n, generator=gen))
            if m.affine:
                m.weight.copy_(0.5 + torch.rand(n, generator=gen))
                m.bias.copy_(0.1 * torch.randn(n, generator=gen))
    return model


def assert_outputs_close(got, want, rtol=1e-4):
    """max |got - want| <= rtol * max |want|, through dicts and tuples; dtype and shape equal."""
    if isinstance(want, dict):
        assert list(got) == list(want)
        for key in want:
            assert_outputs_close(got[key], want[key], rtol)
        return
    if isinstance(want, (tuple, list)):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert_outputs_close(g, w, rtol)
        return
    assert got.shape == want.shape and got.dtype == want.dtype
    scale = want.abs().max().item()
    error = (got - want).abs().max().item()
    assert error <= rtol * scale, f"max error {error:.3e} over {rtol} x max |output| {scale:.3e}"


def inputs(channels, size, dtype=torch.float32):
    """Batch 1 in NCHW and batch 2 in channels_last."""
    return [torch.randn(1, channels, size, size, dtype=dtype),
            torch.randn(2, channels, size, size, dtype=dtype).to(memory_format=torch.channels_last)]


def check(model, xs, rtol=1e-4, reference=None, **options):
    """The optimised copy of `model`, after checking it against `reference` (default: the
    model itself; pass a copy when the model has state a forward changes) on each input."""
    reference = model if reference is None else reference
    opt = cnnops.optimize_for_inference(model, **options)
    with torch.no_grad():
        for x in xs:
            assert_outputs_close(opt(x), reference(x), rtol)
    return opt


def fused_modules(opt):
    return [m for m in opt.modules() if isinstance(m, (FusedConv2d, FusedSeparableConv2d))]


def reasons(report):
    return {entry.name: entry.reason for entry in report.left}


# ----------------------------------------------------------------------------- the model zoo

TAILS_LEFT = "add output has 2 users: activation not fused"  # Xception: the next block reads it

ZOO = {
    # name: (builder, input channels, size, fused counts, number of rows left)
    "resnet18": (lambda: models.resnet18(num_classes=10), 3, 32,
                 {"conv+bn+relu": 9, "conv+bn+add+relu": 8, "conv+bn": 3}, 0),
    "resnet34": (lambda: models.resnet34(num_classes=10), 3, 32,
                 {"conv+bn+relu": 17, "conv+bn+add+relu": 16, "conv+bn": 3}, 0),
    "resnet50": (lambda: models.resnet50(num_classes=10), 3, 32,
                 {"conv+bn+relu": 33, "conv+bn+add+relu": 16, "conv+bn": 4}, 0),
    "resnet101": (lambda: models.resnet101(num_classes=10), 3, 32,
                  {"conv+bn+relu": 67, "conv+bn+add+relu": 33, "conv+bn": 4}, 0),
    "resnet152": (lambda: models.resnet152(num_classes=10), 3, 32,
                  {"conv+bn+relu": 101, "conv+bn+add+relu": 50, "conv+bn": 4}, 0),
    "xception": (lambda: models.xception(num_classes=10), 3, 32,
                 {"sepconv+bn+relu": 22, "sepconv+bn+add": 8, "sepconv+bn": 4, "conv+bn+add": 4,
                  "conv+bn+relu": 2}, 11),
    "mini_xception": (lambda: models.mini_xception(10), 3, 32,
                      {"sepconv+bn+relu": 5, "sepconv+bn": 4, "conv+add": 4, "conv+bn+relu": 1}, 3),
    "simple_cnn": (lambda: models.simple_cnn(input_size=32), 1, 32, {"conv+relu": 5}, 0),
    "segmentation_fcn": (lambda: models.segmentation_fcn(), 3, 32,
                         {"conv+bn+relu": 6, "conv": 1}, 3),
}


def test_zoo_covers_every_model():
    assert set(ZOO) == set(models.MODELS)


@pytest.mark.parametrize("name", list(ZOO))
def test_model_zoo(name):
    build, channels, size, counts, left = ZOO[name]
    model = randomize_batchnorms(build()).eval()
    opt = check(model, inputs(channels, size))
    report = opt.inference_report
    assert report.counts == counts, str(report)
    assert len(report.left) == left, str(report)
    if name == "xception":
        assert set(reasons(report).values()) == {TAILS_LEFT}
    if name == "segmentation_fcn":  # the decoder's BatchNorms follow transposed convolutions
        assert all("ConvTranspose2d" in r for r in reasons(report).values())
    # Every BatchNorm after a (non-transposed) convolution is folded.
    batchnorms = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert report.folded_batchnorms == batchnorms - (3 if name == "segmentation_fcn" else 0)


# ----------------------------------------------------------------------------- torchvision

SEGMENTATION = ("fcn_resnet50", "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large")
TORCHVISION = {
    # name: (input size, fused counts)
    "resnet18": (32, {"conv+bn+relu": 9, "conv+bn+add+relu": 8, "conv+bn": 3}),
    "resnet50": (32, {"conv+bn+relu": 33, "conv+bn+add+relu": 16, "conv+bn": 4}),
    "mobilenet_v2": (32, {"conv+bn+relu6": 35, "conv+bn+add": 10, "conv+bn": 7}),
    "mobilenet_v3_small": (32, {"conv+bn+hardswish": 18, "conv+relu": 9, "conv+hardsigmoid": 9,
                                "conv+bn+add": 6, "conv+bn+relu": 5, "conv+bn": 5}),
    "mobilenet_v3_large": (32, {"conv+bn+hardswish": 20, "conv+bn+relu": 11, "conv+bn+add": 10,
                                "conv+relu": 8, "conv+hardsigmoid": 8, "conv+bn": 5}),
    "efficientnet_b0": (32, {"conv+bn+silu": 33, "conv+silu": 16, "conv": 16, "conv+bn+add": 9,
                             "conv+bn": 7}),
    "regnet_y_400mf": (32, {"conv+bn+relu": 33, "conv+relu": 16, "conv": 16,
                            "conv+bn+add+relu": 16, "conv+bn": 4}),
    "fcn_resnet50": (48, {"conv+bn+relu": 34, "conv+bn+add+relu": 16, "conv+bn": 4, "conv": 1}),
    "deeplabv3_mobilenet_v3_large": (48, {"conv+bn+hardswish": 20, "conv+bn+relu": 18,
                                          "conv+bn+add": 10, "conv+relu": 8, "conv+hardsigmoid": 8,
                                          "conv+bn": 5, "conv": 1}),
    "lraspp_mobilenet_v3_large": (48, {"conv+bn+hardswish": 20, "conv+bn+relu": 12,
                                       "conv+bn+add": 10, "conv+relu": 8, "conv+hardsigmoid": 8,
                                       "conv+bn": 5, "conv": 2, "conv+add": 1}),
}


def torchvision_model(name):
    torch.manual_seed(0)
    if name in SEGMENTATION:
        return getattr(TV.models.segmentation, name)(weights=None, weights_backbone=None,
                                                      num_classes=3)
    return getattr(TV.models, name)(num_classes=10)


@needs_torchvision
@pytest.mark.parametrize("converted", [False, True], ids=["torch", "converted"])
@pytest.mark.parametrize("name", list(TORCHVISION))
def test_torchvision(name, converted):
    size, counts = TORCHVISION[name]
    model = randomize_batchnorms(torchvision_model(name)).eval()
    if converted:
        cnnops.convert(model)
    opt = check(model, inputs(3, size))
    report = opt.inference_report
    assert report.counts == counts, str(report)
    assert report.left == [], str(report)
    assert report.folded_batchnorms == sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    if name == "resnet50":
        assert "layer1.0.conv3+bn3+add+relu" in [f.name for f in report.fused]
    if name in ("resnet50", "mobilenet_v2"):
        print(f"\ntorchvision {name}:\n{report}")


# ----------------------------------------------------------------------------- what is fused

class ConvBnAct(nn.Module):
    """act(act(bn(conv(x))) + x): both activation sites, in whatever form `act` has."""

    def __init__(self, act, conv=None):
        super().__init__()
        self.conv = conv or nn.Conv2d(4, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.act = act

    def forward(self, x):
        return self.act(self.act(self.bn(self.conv(x))) + x)


ACTIVATIONS = [
    (nn.ReLU(), "relu"), (nn.ReLU(inplace=True), "relu"), (nn.ReLU6(), "relu6"),
    (nn.SiLU(), "silu"), (nn.Hardswish(), "hardswish"), (nn.Hardsigmoid(), "hardsigmoid"),
    (nn.GELU(), "gelu"), (nn.GELU(approximate="tanh"), "gelu_tanh"), (nn.Hardtanh(0, 6), "relu6"),
    (F.relu, "relu"), (lambda t: F.relu(t, inplace=True), "relu"), (torch.relu, "relu"),
    (torch.relu_, "relu"), (lambda t: t.relu(), "relu"), (lambda t: t.relu_(), "relu"),
    (F.relu6, "relu6"), (F.silu, "silu"), (lambda t: F.silu(t, inplace=True), "silu"),
    (F.hardswish, "hardswish"), (F.hardsigmoid, "hardsigmoid"), (F.gelu, "gelu"),
    (lambda t: F.gelu(t, approximate="tanh"), "gelu_tanh"), (lambda t: F.hardtanh(t, 0.0, 6.0), "relu6"),
]


@pytest.mark.parametrize("act,kind", ACTIVATIONS, ids=[f"{i}-{k}" for i, (_, k) in enumerate(ACTIVATIONS)])
def test_activation_forms(act, kind):
    model = randomize_batchnorms(ConvBnAct(act)).eval()
    opt = check(model, inputs(4, 8))
    assert opt.inference_report.counts == {f"conv+bn+{kind}+add+{kind}": 1}
    (fused,) = fused_modules(opt)
    assert (fused.activation, fused.post_activation) == (kind, kind)


@pytest.mark.parametrize("act", [nn.Hardtanh(-1, 1), nn.LeakyReLU(), torch.sigmoid])
def test_other_activations_stay(act):
    model = randomize_batchnorms(ConvBnAct(act)).eval()
    opt = check(model, inputs(4, 8))
    assert opt.inference_report.counts == {"conv+bn": 1}


def test_depthwise_separable_and_grouped():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.dw = cnn.DepthwiseConv2d(8, 3, padding=1, depth_multiplier=2)
            self.dw_bn = nn.BatchNorm2d(16)
            self.sep = cnn.SeparableConv2d(16, 16, 3, stride=2, padding="same", bias=False)
            self.sep_bn = nn.BatchNorm2d(16)
            self.grouped = nn.Conv2d(16, 16, 3, stride=2, padding=1, groups=4, bias=False)
            self.grouped_bn = nn.BatchNorm2d(16)
            self.torch_dw = nn.Conv2d(16, 16, 5, padding="same", groups=16)
            self.torch_dw_bn = nn.BatchNorm2d(16)

        def forward(self, x):
            x = F.relu6(self.dw_bn(self.dw(x)))
            x = F.relu(self.sep_bn(self.sep(x)) + self.grouped_bn(self.grouped(x)))
            return F.hardswish(self.torch_dw_bn(self.torch_dw(x)))

    model = randomize_batchnorms(Net()).eval()
    opt = check(model, inputs(8, 15))
    assert opt.inference_report.counts == {"conv+bn+relu6": 1, "sepconv+bn+add+relu": 1,
                                           "conv+bn": 1, "conv+bn+hardswish": 1}
    assert sum(isinstance(m, FusedSeparableConv2d) for m in opt.modules()) == 1


def test_both_operands_are_chains_left_one_takes_the_add():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)
            self.conv2, self.bn2 = nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)

        def forward(self, x):
            return torch.relu(torch.add(self.bn1(self.conv1(x)), self.bn2(self.conv2(x))))

    opt = check(randomize_batchnorms(Net()).eval(), inputs(4, 8))
    names = {f.name: f.pattern for f in opt.inference_report.fused}
    assert names == {"conv1+bn1+add+relu": "conv+bn+add+relu", "conv2+bn2": "conv+bn"}


def test_broadcast_residual_is_added_outside_the_kernel():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)
            self.pool = nn.AdaptiveAvgPool2d(1)

        def forward(self, x):
            return F.silu(self.bn(self.conv(x)) + self.pool(x))  # residual (N, C, 1, 1)

    opt = check(randomize_batchnorms(Net()).eval(), inputs(4, 8))
    assert opt.inference_report.counts == {"conv+bn+add+silu": 1}


def test_shared_conv_called_twice():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)
            self.bn1, self.bn2 = nn.BatchNorm2d(4), nn.BatchNorm2d(4)

        def forward(self, x):
            return self.bn2(self.conv(torch.relu(self.bn1(self.conv(x)))))

    opt = check(randomize_batchnorms(Net()).eval(), inputs(4, 8))
    assert opt.inference_report.counts == {"conv+bn+relu": 1, "conv+bn": 1}
    assert len(fused_modules(opt)) == 2


def test_batchnorm_without_affine_parameters():
    model = randomize_batchnorms(nn.Sequential(nn.Conv2d(3, 4, 3, bias=False),
                                               nn.BatchNorm2d(4, affine=False), nn.ReLU6())).eval()
    opt = check(model, inputs(3, 8))
    assert opt.inference_report.counts == {"conv+bn+relu6": 1}


def test_unbatched_input():  # (BatchNorm2d refuses 3-D inputs)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval()
    opt = check(model, [torch.randn(3, 9, 9)])
    assert opt.inference_report.counts == {"conv+relu": 1}


# ----------------------------------------------------------------------------- what is left

KEPT_IN_TRAIN_MODE = {  # index of the submodule left in train mode: (fused, left)
    0: ({}, {"0": "Conv2d in train mode", "1": "BatchNorm2d not directly after a fusable convolution"}),
    1: ({"conv": 1}, {"1": "BatchNorm2d in train mode: not folded"}),
    2: ({"conv+bn": 1}, {"2": "ReLU in train mode"}),
}


@pytest.mark.parametrize("index", list(KEPT_IN_TRAIN_MODE), ids=["conv", "bn", "relu"])
def test_submodule_kept_in_train_mode(index):
    model = randomize_batchnorms(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())).eval()
    model[index].train()
    # A train-mode BatchNorm updates its statistics: compare against a copy, not the model.
    opt = check(model, inputs(3, 8), reference=copy.deepcopy(model))
    counts, left = KEPT_IN_TRAIN_MODE[index]
    assert opt.inference_report.counts == counts
    assert reasons(opt.inference_report) == left
    assert not opt.training and [type(m) for m in opt.modules() if m.training] == [type(model[index])]


def test_batchnorm_without_running_stats_is_kept():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, track_running_stats=False),
                          nn.ReLU()).eval()
    opt = check(model, inputs(3, 8))
    assert "track_running_stats=False" in reasons(opt.inference_report)["1"]
    assert opt.inference_report.folded_batchnorms == 0


def test_activation_used_twice_keeps_the_add():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)

        def forward(self, x):
            a = torch.relu(self.bn(self.conv(x)))
            return torch.relu(a + x), a

    opt = check(randomize_batchnorms(Net()).eval(), inputs(4, 8))
    assert opt.inference_report.counts == {"conv+bn+relu": 1}
    assert list(reasons(opt.inference_report).values()) == [
        "activation output has 2 users: add not fused"]


def test_batchnorm_output_used_twice_keeps_the_activation():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)

        def forward(self, x):
            y = self.bn(self.conv(x))
            return F.relu(y) + y

    opt = check(randomize_batchnorms(Net()).eval(), inputs(4, 8))
    assert opt.inference_report.counts == {"conv+bn": 1}
    assert "BatchNorm output has 2 users: activation not fused" in reasons(opt.inference_report).values()


def test_conv_output_with_two_consumers_keeps_the_batchnorm():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)

        def forward(self, x):
            y = self.conv(x)
            return self.bn(y) * y

    opt = check(randomize_batchnorms(Net()).eval(), inputs(4, 8))
    assert opt.inference_report.counts == {"conv": 1}
    assert reasons(opt.inference_report) == {"bn": "conv output has 2 users: BatchNorm2d not fused"}


@pytest.mark.parametrize("converted", [False, True], ids=["torch", "converted"])
def test_reflect_padding_is_not_fused(converted):
    model = randomize_batchnorms(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"),
                                               nn.BatchNorm2d(4), nn.ReLU())).eval()
    if converted:
        cnnops.convert(model)
    opt = check(model, inputs(3, 8))
    assert opt.inference_report.counts == {}
    assert reasons(opt.inference_report)["0"] == "padding_mode='reflect'"


def test_in_place_op_between_conv_and_add_stops_the_chain():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)

        def forward(self, x):
            x = x * 1.0
            y = self.bn(self.conv(x))
            return y + torch.relu_(x)  # the conv must read x before the relu_ writes it

    opt = check(randomize_batchnorms(Net()).eval(), inputs(4, 8))
    assert opt.inference_report.counts == {"conv+bn": 1}
    assert "in-place" in " ".join(reasons(opt.inference_report).values())


def test_in_place_add_onto_the_residual_is_not_fused():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)

        def forward(self, x):
            r = x * 2.0
            return r.add_(self.bn(self.conv(x))), r

    opt = check(randomize_batchnorms(Net()).eval(), inputs(4, 8))
    assert opt.inference_report.counts == {"conv+bn": 1}
    assert "in-place add" in " ".join(reasons(opt.inference_report).values())


def test_add_with_alpha_and_transposed_conv_are_left():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)
            self.up, self.up_bn = nn.ConvTranspose2d(4, 4, 2, stride=2), nn.BatchNorm2d(4)

        def forward(self, x):
            return self.up_bn(self.up(torch.add(self.bn(self.conv(x)), x, alpha=0.5)))

    opt = check(randomize_batchnorms(Net()).eval(), inputs(4, 8))
    assert opt.inference_report.counts == {"conv+bn": 1}
    assert "ConvTranspose2d" in reasons(opt.inference_report)["up_bn"]


def test_hooked_conv_is_kept():
    model = randomize_batchnorms(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))).eval()
    calls = []
    model[0].register_forward_hook(lambda *_: calls.append(1))
    opt = check(model, inputs(3, 8))
    assert opt.inference_report.counts == {}
    assert reasons(opt.inference_report)["0"] == "Conv2d has forward hooks"
    assert len(calls) == 4  # the model's two calls and the copy's two


# ----------------------------------------------------------------------------- untraceable models

class DataDependent(nn.Module):
    def forward(self, x):
        return x if x.mean() > 0 else -x


class Bottleneck(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)) + x)


class Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                  DataDependent(), nn.Conv2d(8, 8, 1), nn.BatchNorm2d(8), nn.SiLU())
        self.block = Bottleneck()

    def forward(self, x):
        x = self.stem(x)
        if x.sum() > 0:
            x = self.block(x)
        return x


def test_untraceable_model_falls_back_to_children():
    model = randomize_batchnorms(Untraceable()).eval()
    xs = inputs(3, 8)
    opt = check(model, xs + [-x for x in xs])
    report = opt.inference_report
    assert report.counts == {"conv+bn+relu": 1, "conv+bn+silu": 1, "conv+bn+add+relu": 1}
    assert [f.name for f in report.fused] == ["stem.0+1+relu", "stem.4+5+silu",
                                              "block.conv+bn+add+relu"]
    why = reasons(report)
    assert why["<root>"].startswith("not traceable: ") and why["<root>"].endswith("one by one")
    assert why["stem"].endswith("used module patterns")
    assert why["stem.3"].startswith("not traceable: ")
    assert isinstance(opt.module.stem[1], nn.Identity)  # indices kept


# ----------------------------------------------------------------------------- the contract

@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_original_model_is_unchanged(training):
    model = randomize_batchnorms(models.resnet18(num_classes=10)).train(training)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    opt = cnnops.optimize_for_inference(model, example_inputs=torch.randn(2, 3, 32, 32))
    assert model.training is training and all(m.training is training for m in model.modules())
    after = model.state_dict()
    assert list(after) == list(state)
    assert all(torch.equal(after[k], v) and after[k].stride() == v.stride() for k, v in state.items())
    assert not opt.training and not any(m.training for m in opt.modules())
    assert isinstance(opt, InferenceModel) and opt.inference_report.folded_batchnorms == 20


def test_float64_model():
    model = randomize_batchnorms(models.resnet18(num_classes=10)).double().eval()
    opt = check(model, inputs(3, 32, torch.float64), rtol=1e-10)
    assert all(m.weight.dtype == torch.float64 for m in fused_modules(opt))
    assert opt.inference_report.folded_batchnorms == 20


@pytest.mark.parametrize("channels_last", [True, False])
def test_layouts(channels_last):
    model = randomize_batchnorms(models.segmentation_fcn()).eval()
    opt = check(model, inputs(3, 16), channels_last=channels_last)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    assert all(m.weight.is_contiguous(memory_format=fmt) for m in fused_modules(opt))
    with torch.no_grad():  # a 4-D output comes back in the input's layout
        x = torch.randn(2, 3, 16, 16)
        assert opt(x).is_contiguous()
        cl = opt(x.to(memory_format=torch.channels_last))
        assert cl.is_contiguous(memory_format=torch.channels_last) and not cl.is_contiguous()


def test_weights_are_frozen_and_example_inputs_run(monkeypatch):
    frozen, fused_calls = [], []
    monkeypatch.setattr(cnnops._C, "freeze_filter", frozen.append, raising=False)
    for name in ("conv2d_fprop_fused", "depthwise_fprop_fused"):  # what every fused path calls
        def spy(*args, reference=getattr(direct, name), **kwargs):
            fused_calls.append(torch.is_grad_enabled())
            return reference(*args, **kwargs)
        monkeypatch.setattr(direct, name, spy)
    model = randomize_batchnorms(models.mini_xception(10)).eval()
    opt = cnnops.optimize_for_inference(model, example_inputs=(torch.randn(1, 3, 32, 32),))
    fused = fused_modules(opt)
    buffers = [t for m in fused for t in m.buffers() if t.dim() == 4]
    assert len(frozen) == len(buffers) and all(any(t is b for b in buffers) for t in frozen)
    # one run, under no_grad: a call per module, two per separable one (depthwise, pointwise)
    separable = sum(isinstance(m, FusedSeparableConv2d) for m in fused)
    assert separable > 0 and len(fused_calls) == len(fused) + separable and not any(fused_calls)


def test_report_table():
    model = randomize_batchnorms(models.resnet18(num_classes=10)).eval()
    text = str(cnnops.optimize_for_inference(model).inference_report)
    assert text.startswith("cnnops inference report: 20 fused, 0 left")
    assert "conv+bn+add+relu  8" in text and "layer1.0.conv2+bn2+add+relu" in text


def test_torch_compile_fullgraph():
    # aot_eager: dynamo's full graph and the ops' fake kernels, without inductor's C++ build
    model = randomize_batchnorms(models.resnet18(num_classes=10)).eval()
    opt = cnnops.optimize_for_inference(model)
    compiled = torch.compile(opt, fullgraph=True, backend="aot_eager")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert_outputs_close(compiled(x), model(x))


def test_torch_export():
    model = randomize_batchnorms(models.resnet18(num_classes=10)).eval()
    opt = cnnops.optimize_for_inference(model)
    x = torch.randn(2, 3, 32, 32)
    exported = torch.export.export(opt, (x,))
    with torch.no_grad():
        assert_outputs_close(exported.module()(x), model(x))


def test_dtypes_the_kernels_do_not_take_stay_unfused():
    # bfloat16 / float16 on the CPU: torch runs them, cnnops' CPU kernels do not
    for dtype in (torch.bfloat16, torch.float16):
        model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        randomize_batchnorms(model)
        model = model.to(dtype).eval()
        opt = cnnops.optimize_for_inference(model)
        assert not fused_modules(opt)
        assert any(str(dtype) in why for why in reasons(opt.inference_report).values())
        x = torch.randn(2, 3, 9, 9, dtype=dtype)
        with torch.no_grad():
            assert torch.equal(opt(x), model(x))


def test_input_that_requires_grad_gets_the_same_values_and_gradients():
    # The fused op has no derivative: a call that records a graph takes differentiable ops
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          cnn.SeparableConv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.SiLU())
    randomize_batchnorms(model)
    model.eval()
    opt = cnnops.optimize_for_inference(model)
    assert len(fused_modules(opt)) == 2
    x = torch.randn(2, 3, 9, 9, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    y, y2 = opt(x), model(x2)
    torch.testing.assert_close(y, y2, rtol=1e-4, atol=1e-5)
    y.square().sum().backward()
    y2.square().sum().backward()
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-4, atol=1e-5)


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        cnnops.optimize_for_inference("resnet")
    with pytest.raises(TypeError, match="channels_last"):
        cnnops.optimize_for_inference(nn.Conv2d(3, 4, 3), channels_last="yes")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", ["resnet18", "xception", "segmentation_fcn"])
def test_cuda_model(name):
    build, channels, size, counts, left = ZOO[name]
    model = randomize_batchnorms(build()).eval().cuda()
    opt = check(model, [x.cuda() for x in inputs(channels, size)])
    assert opt.inference_report.counts == counts, str(opt.inference_report)
    assert fused_modules(opt) and all(t.is_cuda for t in opt.state_dict().values())
