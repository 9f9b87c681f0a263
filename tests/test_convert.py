"""cnnops.convert: every torch.nn.Conv2d / ConvTranspose2d / MaxPool2d / AvgPool2d /
AdaptiveAvgPool2d in a model becomes
the cnnops module, sharing its parameters; outputs, gradients and state_dict unchanged."""
import logging

import torch

import cnnops


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.convs = torch.nn.ModuleList([torch.nn.Conv2d(4, 4, 3, padding=1, groups=4),
                                          torch.nn.Conv2d(4, 6, 1, bias=False)])
        self.heads = torch.nn.ModuleDict({"up": torch.nn.ConvTranspose2d(6, 3, 2, stride=2)})
        self.pool = torch.nn.MaxPool2d(3, 2, 1)
        self.avg = torch.nn.AvgPool2d(3, 1, 1, count_include_pad=False)

    def forward(self, x):
        for c in self.convs:
            x = torch.relu(c(x))
        return self.heads["up"](self.avg(self.pool(x)))


class MyConv(torch.nn.Conv2d):  # a user subclass: left alone
    pass


def make_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"),
                               Block(), torch.nn.Sequential(torch.nn.MaxPool2d(2)),
                               torch.nn.AdaptiveAvgPool2d((5, None)), MyConv(3, 3, 1)).double()


def test_convert_swaps_and_shares(caplog):
    ref, model = make_model(), make_model()
    params = {n: p for n, p in model.named_parameters()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with caplog.at_level(logging.INFO, logger="cnnops"):
        out, n = cnnops.convert(model, return_count=True)
    assert out is model and n == 8
    assert "swapped 8" in caplog.text
    kinds = [type(m) for m in model.modules()]
    assert kinds.count(cnnops.nn.Conv2d) == 3 and kinds.count(cnnops.nn.MaxPool2d) == 2
    assert kinds.count(cnnops.nn.AvgPool2d) == 1 and kinds.count(cnnops.nn.AdaptiveAvgPool2d) == 1
    assert kinds.count(cnnops.nn.ConvTranspose2d) == 1 and kinds.count(MyConv) == 1
    assert all(p is params[k] for k, p in model.named_parameters())
    assert model.state_dict().keys() == state.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    x = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    torch.testing.assert_close(model(x), ref(x))
    model(x).square().sum().backward()
    ref(x).square().sum().backward()
    for (name, p), q in zip(model.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=name)


def test_convert_is_idempotent_and_returns_model():
    model = cnnops.convert(make_model())
    assert isinstance(model, torch.nn.Sequential)
    assert cnnops.convert(model, return_count=True)[1] == 0
