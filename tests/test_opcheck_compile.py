"""torch.library.opcheck on every registered op (schema, autograd registration, fake
tensor, AOT dispatch with dynamic shapes), and torch.compile(fullgraph=True) of a small
model built from cnnops.nn matching eager forward and backward."""
import pytest
import torch
import torch.nn.functional as F

import cnnops
from conftest import assert_close, device_params

ops = torch.ops.cnnops
CL = torch.channels_last
pytestmark = [pytest.mark.conv2d, pytest.mark.parametrize("device", device_params())]


def leaf(*shape, device="cpu", dtype=torch.float64, cl=False, requires_grad=True):
    x = torch.randn(*shape, dtype=dtype, device=device)
    if cl:
        x = x.to(memory_format=CL)
    return x.requires_grad_(requires_grad)


def opcheck(op, args):
    result = torch.library.opcheck(op, args)
    failed = {k: v for k, v in result.items() if v != "SUCCESS"}
    assert not failed, failed


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("case", ["plain", "strided", "channels-last", "grouped-cropped", "sliced"])
def test_opcheck_fprop(device, dtype, bias, case):
    x_cl = case == "channels-last"
    x = leaf(2, 4, 7, 6, device=device, dtype=dtype, cl=x_cl)
    w = leaf(6, 4, 3, 3, device=device, dtype=dtype, cl=x_cl)
    conf = ([1, 1], [0, 0, 0, 0], [1, 1], 1)
    if case == "strided":
        conf = ([2, 3], [1, 1, 2, 0], [1, 2], 1)
    if case == "grouped-cropped":
        w = leaf(6, 2, 3, 2, device=device, dtype=dtype)
        conf = ([1, 2], [1, -1, 0, -1], [2, 1], 2)
    if case == "sliced":
        x = torch.randn(2, 4, 7, 12, dtype=dtype, device=device)[..., ::2].requires_grad_()
    b = leaf(6, device=device, dtype=dtype) if bias else None
    opcheck(ops.conv2d_fprop.default, (x, w, b, *conf))


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("case", ["plain", "strided", "channels-last", "grouped"])
def test_opcheck_dgrad(device, bias, case):
    dy = leaf(2, 6, 5, 4, device=device, cl=case == "channels-last")
    w = leaf(6, 4, 3, 3, device=device)
    conf = ([7, 6], [1, 1], [0, 0], [1, 1], 1)
    if case == "strided":
        conf = ([10, 8], [2, 2], [1, 1], [1, 1], 1)   # one row and col of output_padding
    if case == "grouped":
        w = leaf(6, 2, 2, 3, device=device)
        conf = ([6, 6], [1, 2], [0, 1], [2, 1], 3)
    C = w.shape[1] * conf[-1]
    b = leaf(C, device=device) if bias else None
    opcheck(ops.conv2d_dgrad.default, (dy, w, b, *conf))


@pytest.mark.parametrize("case", ["plain", "strided", "channels-last", "grouped"])
def test_opcheck_wgrad(device, case):
    x = leaf(2, 4, 7, 6, device=device, cl=case == "channels-last")
    dy = leaf(2, 6, 5, 4, device=device)
    conf = ([3, 3], [1, 1], [0, 0], [1, 1], 1)
    if case == "strided":
        dy = leaf(2, 6, 4, 3, device=device)
        conf = ([3, 2], [2, 2], [1, 0], [1, 1], 1)
    if case == "grouped":
        dy = leaf(2, 6, 5, 2, device=device)
        conf = ([3, 2], [1, 2], [0, 0], [1, 2], 2)
    opcheck(ops.conv2d_wgrad.default, (dy, x, *conf))


@pytest.mark.parametrize("case", ["plain", "channels-last", "empty-batch"])
def test_opcheck_bias_grad(device, case):
    dy = leaf(0 if case == "empty-batch" else 2, 6, 5, 4, device=device, cl=case == "channels-last")
    opcheck(ops.conv2d_bias_grad.default, (dy,))


def test_opcheck_empty_batch(device):
    x = leaf(0, 4, 7, 6, device=device)
    w = leaf(6, 4, 3, 3, device=device)
    opcheck(ops.conv2d_fprop.default, (x, w, None, [1, 1], [1, 1, 1, 1], [1, 1], 1))
    opcheck(ops.conv2d_dgrad.default, (leaf(0, 6, 5, 4, device=device), w, None, [7, 6], [1, 1],
                                       [0, 0], [1, 1], 1))


# ----------------------------------------------------------------------------- torch.compile

class Net(torch.nn.Module):
    def __init__(self, nn):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, groups=2, padding_mode="reflect")
        self.up = nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        return self.up(x)


def _nets(device):
    torch.manual_seed(0)
    a = Net(cnnops.nn).to(device)
    torch.manual_seed(0)
    b = Net(torch.nn).to(device)
    return a, b


@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
def test_compile_fullgraph_matches_eager(device, dynamic):
    torch._dynamo.reset()
    eager, reference_net = _nets(device)
    compiled_net, _ = _nets(device)
    compiled = torch.compile(compiled_net, fullgraph=True, dynamic=dynamic, backend="inductor")
    shapes = [(2, 3, 10, 9), (3, 3, 12, 8)] if dynamic else [(2, 3, 10, 9)]
    for shape in shapes:
        x = torch.randn(shape, device=device)
        xa, xb, xc = (x.clone().requires_grad_() for _ in range(3))
        ya, yb, yc = compiled(xa), eager(xb), reference_net(xc)
        assert ya.shape == yb.shape == (shape[0], 4, shape[2] // 2 * 2, (shape[3] + 1) // 2 * 2)
        assert_close(ya, yb.detach().double(), torch.float32, "compiled vs eager")
        assert_close(yb, yc.detach().double(), torch.float32, "cnnops vs torch")
        g = torch.randn_like(ya)
        ya.backward(g)
        yb.backward(g)
        assert_close(xa.grad, xb.grad.double(), torch.float32, "grad input")
        for (name, pa), pb in zip(compiled_net.named_parameters(), eager.parameters()):
            assert_close(pa.grad, pb.grad.double(), torch.float32, f"grad {name}")
            pa.grad = pb.grad = None


def test_compile_graph_contains_cnnops_ops(device):
    """fullgraph tracing keeps our ops as single nodes (no graph break, no decomposition)."""
    torch._dynamo.reset()
    seen = []

    def backend(gm, example_inputs):
        seen.extend(str(n.target) for n in gm.graph.nodes if n.op == "call_function")
        return gm

    m = cnnops.nn.Conv2d(3, 4, 3, padding="same", stride=2).to(device)
    f = torch.compile(lambda x: torch.relu(m(x)), fullgraph=True, backend=backend)
    x = torch.randn(2, 3, 9, 9, device=device)
    y = f(x)
    assert any("cnnops.conv2d_fprop" in s for s in seen), seen
    assert_close(y, torch.relu(m(x)).detach().double(), torch.float32)
