"""cnnops.nn.Conv2d / ConvTranspose2d against torch.nn: parameter names and shapes,
initialisation, state_dict keys, loading each other's state, all padding modes, and
forward/backward."""
import pytest
import torch

import cnnops
from conftest import assert_close, device_params

pytestmark = [pytest.mark.conv2d, pytest.mark.parametrize("device", device_params())]


def pair(cls_ours, cls_torch, *args, **kwargs):
    torch.manual_seed(123)
    ours = cls_ours(*args, **kwargs)
    torch.manual_seed(123)
    theirs = cls_torch(*args, **kwargs)
    return ours, theirs


def check_same_module(ours, theirs):
    assert isinstance(ours, type(theirs))
    named_a, named_b = dict(ours.named_parameters()), dict(theirs.named_parameters())
    assert list(named_a) == list(named_b)
    for name in named_a:
        assert named_a[name].shape == named_b[name].shape, name
        assert torch.equal(named_a[name], named_b[name]), f"{name} initialised differently"
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours).split("(", 1)[1] == repr(theirs).split("(", 1)[1]


def check_forward_backward(ours, theirs, x, **forward_kwargs):
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = ours(xa, **forward_kwargs), theirs(xb, **forward_kwargs)
    assert ya.shape == yb.shape
    assert_close(ya, yb.detach().double(), x.dtype, "output")
    g = torch.randn_like(yb)
    ya.backward(g)
    yb.backward(g)
    assert_close(xa.grad, xb.grad.double(), x.dtype, "grad input")
    for (name, pa), pb in zip(ours.named_parameters(), theirs.parameters()):
        assert_close(pa.grad, pb.grad.double(), x.dtype, f"grad {name}")


CONV2D_CONFIGS = [
    pytest.param(dict(in_channels=4, out_channels=6, kernel_size=3), id="plain"),
    pytest.param(dict(in_channels=4, out_channels=6, kernel_size=(3, 2), stride=2, padding=1, bias=False),
                 id="strided-nobias"),
    pytest.param(dict(in_channels=4, out_channels=8, kernel_size=3, padding=(2, 1), dilation=2, groups=2),
                 id="dilated-grouped"),
    pytest.param(dict(in_channels=4, out_channels=4, kernel_size=3, padding="same", groups=4),
                 id="same-depthwise"),
    pytest.param(dict(in_channels=4, out_channels=6, kernel_size=2, padding="valid"), id="valid"),
]


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("config", CONV2D_CONFIGS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_conv2d(device, padding_mode, config, dtype):
    ours, theirs = pair(cnnops.nn.Conv2d, torch.nn.Conv2d, **config, padding_mode=padding_mode,
                        device=device, dtype=dtype)
    check_same_module(ours, theirs)
    check_forward_backward(ours, theirs, torch.randn(2, 4, 9, 8, dtype=dtype, device=device))
    check_forward_backward(ours, theirs, torch.randn(4, 7, 8, dtype=dtype, device=device))


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
def test_conv2d_channels_last_module(device, padding_mode):
    ours, theirs = pair(cnnops.nn.Conv2d, torch.nn.Conv2d, 4, 6, 3, padding=1, padding_mode=padding_mode,
                        device=device)
    ours.to(memory_format=torch.channels_last)
    theirs.to(memory_format=torch.channels_last)
    x = torch.randn(2, 4, 7, 8, device=device).to(memory_format=torch.channels_last)
    check_forward_backward(ours, theirs, x)
    assert ours(x).is_contiguous(memory_format=torch.channels_last)


CONV_TRANSPOSE2D_CONFIGS = [
    pytest.param(dict(in_channels=4, out_channels=6, kernel_size=3), id="plain"),
    pytest.param(dict(in_channels=4, out_channels=6, kernel_size=(3, 2), stride=2, padding=1,
                      output_padding=1, bias=False), id="strided-nobias"),
    pytest.param(dict(in_channels=4, out_channels=8, kernel_size=3, stride=(1, 2), dilation=2, groups=2),
                 id="dilated-grouped"),
    pytest.param(dict(in_channels=4, out_channels=4, kernel_size=3, padding=1, groups=4), id="depthwise"),
]


@pytest.mark.parametrize("config", CONV_TRANSPOSE2D_CONFIGS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_conv_transpose2d(device, config, dtype):
    ours, theirs = pair(cnnops.nn.ConvTranspose2d, torch.nn.ConvTranspose2d, **config, device=device,
                        dtype=dtype)
    check_same_module(ours, theirs)
    check_forward_backward(ours, theirs, torch.randn(2, 4, 5, 6, dtype=dtype, device=device))
    check_forward_backward(ours, theirs, torch.randn(4, 5, 6, dtype=dtype, device=device))


def test_conv_transpose2d_output_size(device):
    ours, theirs = pair(cnnops.nn.ConvTranspose2d, torch.nn.ConvTranspose2d, 4, 6, 3, stride=2, padding=1,
                        device=device, dtype=torch.float64)
    x = torch.randn(2, 4, 5, 6, dtype=torch.float64, device=device)
    for size in [(9, 11), (10, 12), (10, 11)]:
        check_forward_backward(ours, theirs, x, output_size=size)
        assert ours(x, output_size=size).shape[2:] == size


@pytest.mark.parametrize("modules", ["conv2d", "conv_transpose2d"])
def test_state_dict_round_trip(device, modules):
    if modules == "conv2d":
        args, cls_ours, cls_torch = (4, 6, (3, 2)), cnnops.nn.Conv2d, torch.nn.Conv2d
        x = torch.randn(2, 4, 7, 6, device=device)
    else:
        args, cls_ours, cls_torch = (4, 6, (3, 2)), cnnops.nn.ConvTranspose2d, torch.nn.ConvTranspose2d
        x = torch.randn(2, 4, 5, 6, device=device)
    torch.manual_seed(1)
    theirs = cls_torch(*args, stride=2, device=device)
    torch.manual_seed(2)
    ours = cls_ours(*args, stride=2, device=device)
    assert not torch.equal(ours.weight, theirs.weight)
    ours.load_state_dict(theirs.state_dict())  # strict: same keys and shapes
    check_forward_backward(ours, theirs, x)
    torch.manual_seed(3)
    other = cls_torch(*args, stride=2, device=device)
    other.load_state_dict(ours.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(other.state_dict().values(), ours.state_dict().values()))


def test_conv2d_same_strided_accepted(device):
    """padding='same' with stride > 1: torch.nn refuses it; cnnops.nn uses TF/Keras semantics."""
    with pytest.raises(ValueError, match="same"):
        torch.nn.Conv2d(4, 6, 3, stride=2, padding="same")
    torch.manual_seed(5)
    m = cnnops.nn.Conv2d(4, 6, 4, stride=2, padding="same", device=device, dtype=torch.float64)
    torch.manual_seed(5)
    ref = torch.nn.Conv2d(4, 6, 4, stride=2, padding=0, device=device, dtype=torch.float64)
    assert m.padding == "same"
    assert torch.equal(m.weight, ref.weight) and torch.equal(m.bias, ref.bias)
    assert list(m.state_dict()) == list(ref.state_dict())

    class Padded(torch.nn.Module):
        """H=9: out 5, total padding 4*2 + 4 - 9 = 3 -> (1, 2); W=8: out 4, total 2 -> (1, 1)."""
        def forward(self, x):
            return ref(torch.nn.functional.pad(x, (1, 1, 1, 2)))

        def parameters(self, recurse=True):
            return ref.parameters(recurse)

    x = torch.randn(2, 4, 9, 8, dtype=torch.float64, device=device)
    check_forward_backward(m, Padded(), x)
    assert m(x).shape == (2, 6, 5, 4)
    assert m(x[0]).shape == (6, 5, 4)
