"""cnnops.models: architectures (parameter counts, torchvision state_dict keys, shapes),
checkpoints, heads, and parity with cnnops.to_torch(model), the same model on torch.nn
layers only (float64, forward and input gradient, train and eval mode)."""
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import cnnops
from cnnops import SamePad2d, models
from conftest import assert_close

CNNOPS_LAYERS = (cnnops.nn.Conv2d, cnnops.nn.ConvTranspose2d, cnnops.nn.MaxPool2d,
                 cnnops.nn.AvgPool2d, cnnops.nn.AdaptiveAvgPool2d, cnnops.nn.DepthwiseConv2d,
                 cnnops.nn.SeparableConv2d)
TORCH_LAYERS = (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.MaxPool2d, torch.nn.AvgPool2d,
                torch.nn.AdaptiveAvgPool2d)

# name -> (builder kwargs, a small input shape); each model's parity case
CASES = {
    "resnet18": (dict(num_classes=5), (2, 3, 64, 64)),
    "resnet50": (dict(num_classes=5), (2, 3, 64, 64)),
    # 47x47 reaches the pools at odd and even sizes (23, 11, 6, 3); 299 is checked on meta
    "xception": (dict(num_classes=5), (2, 3, 47, 47)),
    "mini_xception": (dict(num_classes=4, in_channels=1), (2, 1, 32, 32)),
    "simple_cnn": (dict(), (2, 1, 28, 28)),
    "segmentation_fcn": (dict(num_classes=3), (2, 3, 24, 24)),
}


def build(name):
    torch.manual_seed(0)
    kwargs, shape = CASES[name]
    return models.get_model(name, **kwargs).double(), shape


class OpNamespaces(TorchDispatchMode):
    """Records the namespace of every op dispatched ('aten', 'cnnops', ...)."""

    def __init__(self):
        super().__init__()
        self.seen = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.seen.add(func.namespace)
        return func(*args, **(kwargs or {}))


def forward_backward(model, x, seed=1):
    """(output, input gradient, op namespaces used) for a fixed dropout seed."""
    x = x.detach().clone().requires_grad_()
    with OpNamespaces() as ops:
        torch.manual_seed(seed)
        y = model(x)
        (g,) = torch.autograd.grad(y, x, torch.ones_like(y) / y.numel() + y.detach())
    return y.detach(), g, ops.seen


# ----------------------------------------------------------------------------- registry

def test_registry_and_unknown_name():
    assert set(models.MODELS) == {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                                  "xception", "mini_xception", "simple_cnn", "segmentation_fcn"}
    assert models.get_model("simple_cnn", num_classes=3).fc.out_features == 3
    with pytest.raises(ValueError, match=r"unknown model 'resnet19'.*resnet18.*xception"):
        models.get_model("resnet19")


# ----------------------------------------------------------------------------- architectures

@pytest.mark.parametrize("name,count", [
    ("resnet18", 11_689_512), ("resnet34", 21_797_672), ("resnet50", 25_557_032),
    ("resnet101", 44_549_160), ("resnet152", 60_192_808), ("xception", 22_855_952)])
def test_parameter_count(name, count):
    with torch.device("meta"):  # construction only: no memory, no initialisation cost
        model = models.get_model(name)
    assert sum(p.numel() for p in model.parameters()) == count


def _bn(prefix):
    return [f"{prefix}.{s}" for s in ("weight", "bias", "running_mean", "running_var",
                                      "num_batches_tracked")]


# torchvision's resnet18 state_dict keys, written out from its layout
RESNET18_KEYS = (
    ["conv1.weight", *_bn("bn1")]
    + [key for layer in (1, 2, 3, 4) for block in (0, 1)
       for key in (f"layer{layer}.{block}.conv1.weight", *_bn(f"layer{layer}.{block}.bn1"),
                   f"layer{layer}.{block}.conv2.weight", *_bn(f"layer{layer}.{block}.bn2"))]
    + [key for layer in (2, 3, 4)
       for key in (f"layer{layer}.0.downsample.0.weight", *_bn(f"layer{layer}.0.downsample.1"))]
    + ["fc.weight", "fc.bias"])


def test_resnet18_state_dict_is_torchvisions():
    state = models.resnet18().state_dict()
    assert len(RESNET18_KEYS) == len(state) == 122
    assert set(state) == set(RESNET18_KEYS)
    shapes = {"conv1.weight": (64, 3, 7, 7), "layer1.0.conv1.weight": (64, 64, 3, 3),
              "layer2.0.conv1.weight": (128, 64, 3, 3),
              "layer2.0.downsample.0.weight": (128, 64, 1, 1),
              "layer4.1.bn2.running_var": (512,), "layer2.0.downsample.1.num_batches_tracked": (),
              "fc.weight": (1000, 512), "fc.bias": (1000,)}
    assert {k: tuple(state[k].shape) for k in shapes} == shapes


def test_resnet_init_is_torchvisions():
    model = models.resnet18()
    assert torch.equal(model.bn1.weight, torch.ones(64))
    assert torch.equal(model.bn1.bias, torch.zeros(64))
    # kaiming_normal_(fan_out, relu): std sqrt(2 / (out_channels * kH * kW))
    std = model.layer3[0].conv1.weight.std().item()
    assert abs(std - (2 / (256 * 9)) ** 0.5) < 0.05 * std
    assert model.layer2[0].conv2.stride == (1, 1) and model.layer2[0].conv1.stride == (2, 2)
    assert models.resnet50().layer2[0].conv2.stride == (2, 2)  # v1.5: stride on the 3x3


def test_shapes_and_input_channels():
    with torch.device("meta"):
        xception = models.xception()
        seen = {}
        xception.avgpool.register_forward_hook(lambda m, i, o: seen.update(shape=tuple(i[0].shape)))
        assert xception(torch.empty(1, 3, 299, 299)).shape == (1, 1000)
        assert seen["shape"] == (1, 2048, 10, 10)
        assert models.resnet34(in_channels=1)(torch.empty(2, 1, 64, 64)).shape == (2, 1000)
        for c in (1, 3):
            assert models.mini_xception(7, in_channels=c)(torch.empty(2, c, 32, 32)).shape == (2, 7)
        assert models.simple_cnn(input_size=64)(torch.empty(2, 1, 64, 64)).shape == (2, 10)
        fcn = models.segmentation_fcn(num_classes=5)
        for h, w in ((24, 32), (21, 19)):  # any size comes back exactly, not only multiples of 8
            assert fcn(torch.empty(2, 3, h, w)).shape == (2, 5, h, w)


@pytest.mark.parametrize("name", CASES)
def test_every_conv_and_pool_is_cnnops(name):
    with torch.device("meta"):
        model = models.get_model(name, **CASES[name][0])
    layers = [m for m in model.modules() if isinstance(m, TORCH_LAYERS + CNNOPS_LAYERS)]
    assert layers and all(type(m) in CNNOPS_LAYERS for m in layers)


# ----------------------------------------------------------------------------- weights, heads

def test_weights_from_path_and_from_memory(tmp_path):
    model, shape = build("resnet18")
    path = tmp_path / "resnet18.pth"
    torch.save(model.state_dict(), path)
    x = torch.randn(shape, dtype=torch.float64)
    expected = model.eval()(x)
    for weights in (path, str(path), model.state_dict()):
        torch.manual_seed(123)  # a different initialisation, overwritten by the checkpoint
        fresh = models.resnet18(num_classes=5, weights=weights).double().eval()
        assert torch.equal(fresh(x), expected)
    with pytest.raises(RuntimeError, match="size mismatch"):
        models.resnet18(weights=path)  # 1000 classes: strict loading refuses
    with pytest.raises(TypeError, match="expected weights"):
        models.resnet18(weights=42)


@pytest.mark.parametrize("name", CASES)
def test_replace_head_and_parameter_groups(name):
    with torch.device("meta"):
        model = models.get_model(name, **CASES[name][0])
    old = getattr(model, type(model).HEAD)
    new = models.replace_head(model, 11)
    assert getattr(model, type(model).HEAD) is new and type(new) is type(old)
    in_size = "in_features" if isinstance(new, torch.nn.Linear) else "in_channels"
    assert getattr(new, in_size) == getattr(old, in_size)
    head = models.head_parameters(model)
    assert head == list(new.parameters()) and len(head) == 2
    base = models.base_parameters(model)
    assert {id(p) for p in base} | {id(p) for p in head} == {id(p) for p in model.parameters()}
    assert len(base) + len(head) == len(list(model.parameters()))


# ----------------------------------------------------------------------------- to_torch parity

@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name", CASES)
def test_parity_with_to_torch(name, train):
    model, shape = build(name)
    twin = cnnops.to_torch(model)
    model.train(train), twin.train(train)
    x = torch.randn(shape, dtype=torch.float64)
    y, g, ours = forward_backward(model, x)
    y_ref, g_ref, theirs = forward_backward(twin, x)
    assert "cnnops" in ours and "cnnops" not in theirs  # really two implementations
    assert_close(y, y_ref, what=f"{name} logits")
    assert_close(g, g_ref, what=f"{name} input gradient")


def test_parity_detects_a_difference():
    model, shape = build("mini_xception")
    twin = cnnops.to_torch(model).eval()
    with torch.no_grad():
        twin.blocks[2].main[1][0].weight[0, 0, 1, 1] += 1e-6  # one depthwise tap
    x = torch.randn(shape, dtype=torch.float64)
    with pytest.raises(AssertionError):
        assert_close(model.eval()(x), twin(x))


@pytest.mark.parametrize("name", CASES)
def test_to_torch_has_no_cnnops_module_and_leaves_model_alone(name):
    model, _ = build(name)
    twin = cnnops.to_torch(model)
    assert not any(type(m).__module__.startswith("cnnops.nn") for m in twin.modules())
    assert all(type(m) in TORCH_LAYERS for m in twin.modules() if isinstance(m, TORCH_LAYERS))
    assert all(type(m) in CNNOPS_LAYERS for m in model.modules() if isinstance(m, TORCH_LAYERS))
    if not any(isinstance(m, cnnops.nn.SeparableConv2d) for m in model.modules()):
        ours, theirs = model.state_dict(), twin.state_dict()
        assert list(ours) == list(theirs)
        assert all(torch.equal(ours[k], theirs[k]) for k in ours)
        assert all(p is not q for p, q in zip(model.parameters(), twin.parameters()))


def test_to_torch_of_converted_model():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.MaxPool2d(2), torch.nn.AvgPool2d(3, 1, 1),
                              torch.nn.ConvTranspose2d(8, 4, 2, stride=2),
                              torch.nn.AdaptiveAvgPool2d((7, None))).double()
    x = torch.randn(2, 3, 10, 10, dtype=torch.float64)
    expected = net(x)
    twin = cnnops.to_torch(cnnops.convert(net))
    assert not any(type(m).__module__.startswith("cnnops") for m in twin.modules())
    assert [type(m) for m in twin] == [torch.nn.Conv2d, torch.nn.ReLU, torch.nn.MaxPool2d,
                                       torch.nn.AvgPool2d, torch.nn.ConvTranspose2d,
                                       torch.nn.AdaptiveAvgPool2d]
    torch.testing.assert_close(twin(x), expected)


@pytest.mark.parametrize("size", [(9, 10), (12, 7)], ids=["odd-even", "even-odd"])
def test_to_torch_keras_same_layers(size):
    """Keras 'same' with stride > 1 (asymmetric, input-size dependent) on every layer kind."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        cnnops.nn.Conv2d(3, 6, 3, stride=2, padding="same"),
        cnnops.nn.MaxPool2d(3, stride=2, padding="same"),
        cnnops.nn.DepthwiseConv2d(6, 4, stride=2, padding="same", depth_multiplier=2),
        cnnops.nn.SeparableConv2d(12, 5, 3, stride=2, padding="same", depth_multiplier=2),
        cnnops.nn.MaxPool2d(2, stride=1, padding="same"),
        cnnops.nn.AvgPool2d(3, stride=2, padding="same"),
        cnnops.nn.SeparableConv2d(5, 4, 3, padding="same")).double()
    twin = cnnops.to_torch(net)
    assert sum(isinstance(m, SamePad2d) for m in twin.modules()) == 6
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    y, g, _ = forward_backward(net, x)
    y_ref, g_ref, theirs = forward_backward(twin, x)
    assert "cnnops" not in theirs
    assert_close(y, y_ref, what="output")
    assert_close(g, g_ref, what="input gradient")


def test_to_torch_refuses_same_max_pool_with_indices():
    with pytest.raises(ValueError, match="return_indices"):
        cnnops.to_torch(cnnops.nn.MaxPool2d(3, 2, padding="same", return_indices=True))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        cnnops.to_torch(lambda x: x)
