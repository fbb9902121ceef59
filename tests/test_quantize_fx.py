"""The torch.fx route of lowp.quantize_model's PyTorch front end (DESIGN.md
section 8): a model torch.export cannot capture is traced with
torch.fx.symbolic_trace and becomes the same float graph. The route is
forced on models export does capture (torch.export.export replaced by one
that raises) to check that both routes give the same prepared graph and the
same integers in every layer; what the fx route cannot quantize is named,
node and op, before calibration."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = nn.functional

from lowp.quantizer import UnsupportedModelError, quantize_model  # noqa: E402
from lowp.quantizer._eval import sqnr  # noqa: E402
from test_quantize_model import EXPORT_OFF, export_off, make_net  # noqa: E402


@pytest.fixture
def no_export(monkeypatch):
    """torch.export.export fails on every model, so capture falls back to fx."""
    monkeypatch.setattr(torch.export, "export", export_off)


def _fx_used(qm) -> bool:
    return all(n.where.startswith("torch.fx node ") for n in qm.prepared.nodes)


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and np.array_equal(a, b)
        )
    return bool(a == b)


def _assert_same_model(via_export, via_fx, test):
    """One prepared graph (ops, weights, clamps, labels) and the same
    integers in every layer for ``test``."""
    assert not _fx_used(via_export) and _fx_used(via_fx)
    pa, pb = via_export.prepared, via_fx.prepared
    assert [n.op for n in pa.nodes] == [n.op for n in pb.nodes]
    for x, y in zip(pa.nodes, pb.nodes):
        assert x.clamp == y.clamp, y.where
        assert x.label == y.label, y.where
        assert x.attrs.keys() == y.attrs.keys(), y.where
        for k in x.attrs:
            assert _same(x.attrs[k], y.attrs[k]), f"{y.where}: {k}"
    ta, tb = via_export.trace(test), via_fx.trace(test)
    names_a = [*pa.inputs, *(n.output for n in pa.nodes)]
    names_b = [*pb.inputs, *(n.output for n in pb.nodes)]
    for na, nb in zip(names_a, names_b):
        np.testing.assert_array_equal(ta[na], tb[nb], err_msg=nb)
    (q,) = via_export.quantize_inputs(test)
    outs_a, outs_b = via_export.run_integer(q), via_fx.run_integer(q)
    if isinstance(outs_a, np.ndarray):
        outs_a, outs_b = (outs_a,), (outs_b,)
    assert len(outs_a) == len(outs_b)
    for a, b in zip(outs_a, outs_b):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def _torch_out(m, x):
    with torch.no_grad():
        y = m(torch.from_numpy(x))
    return [t.numpy() for t in y] if isinstance(y, tuple) else [y.numpy()]


# -- a model only fx captures ----------------------------------------------------------------


class StoredCeiling(nn.Module):
    """A clamp bound kept in a buffer and read with .numpy(): torch.export
    traces with fake tensors, which have no NumPy values, so it fails;
    torch.fx runs the Python code on the real buffer and records the number.
    The head flattens with x.view(x.size(0), -1)."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 4, 3, padding=1)
        self.register_buffer("ceiling", torch.tensor(2.5))
        self.fc = nn.Linear(4 * 8 * 8, 3)

    def forward(self, x):
        y = F.hardtanh(self.c(x), 0.0, float(self.ceiling.numpy()))
        return self.fc(y.view(y.size(0), -1))


def test_a_model_export_cannot_capture_quantizes_through_fx():
    torch.manual_seed(0)
    m = StoredCeiling().eval()
    rng = np.random.default_rng(0)
    cal = rng.standard_normal((32, 3, 8, 8)).astype(np.float32)
    test = rng.standard_normal((8, 3, 8, 8)).astype(np.float32)
    with pytest.raises(Exception, match="numpy"):  # the premise: export fails on it
        torch.export.export(m, (torch.from_numpy(test),))
    qm = quantize_model(m, cal, progress=False)
    assert _fx_used(qm)
    assert [n.op for n in qm.prepared.nodes] == ["conv2d", "reshape", "linear"]
    conv, _, fc = qm.prepared.nodes
    assert conv.clamp == (0.0, 2.5)  # the buffer's value, fused into the convolution
    assert conv.where == "torch.fx node 'c' (Conv2d, module 'c')" and conv.label == "c"
    assert fc.label == "fc"
    # the weights are the module's, the flattening permuted into the linear layer
    np.testing.assert_array_equal(
        conv.attrs["w"], m.c.weight.detach().numpy().transpose(0, 2, 3, 1)
    )
    assert fc.attrs["perm"] is not None
    ref = _torch_out(m, test)[0]
    assert sqnr(ref, qm(test)) > 28.0
    np.testing.assert_allclose(qm.float_outputs(test), ref, rtol=1e-4, atol=1e-5)


# -- both routes, one model ------------------------------------------------------------------


@pytest.fixture(scope="module")
def net():
    return make_net(0)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    return (
        rng.standard_normal((32, 3, 8, 8)).astype(np.float32),
        rng.standard_normal((6, 3, 8, 8)).astype(np.float32),
    )


@pytest.mark.parametrize("scheme", ["int8", "uint8"])
def test_fx_and_export_give_the_same_integers(net, data, scheme, monkeypatch):
    cal, test = data
    via_export = quantize_model(net, cal, scheme=scheme, progress=False)
    with monkeypatch.context() as mp:
        mp.setattr(torch.export, "export", export_off)
        via_fx = quantize_model(net, cal, scheme=scheme, progress=False)
    _assert_same_model(via_export, via_fx, test)


class Forms(nn.Module):
    """The forms the fx route lowers besides the test Net's: functional
    convolution and linear on parameters (get_attr nodes), padding='same',
    ReLU6 / Hardtanh / Dropout / Identity / MaxPool2d / Flatten /
    AdaptiveAvgPool2d modules, torch.add, .contiguous(), F.avg_pool2d,
    mean over H and W, x.view(x.size(0), -1), x.reshape(x.shape[0], -1), a
    padded transposed convolution, and a dict of outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(8, 3, 3, 3) * 0.3)
        self.b = nn.Parameter(torch.randn(8) * 0.1)
        self.bn = nn.BatchNorm2d(8)
        self.act = nn.ReLU6()
        self.c2 = nn.Conv2d(8, 8, 3, padding="same")
        self.ht = nn.Hardtanh(-2.0, 2.0)
        self.drop = nn.Dropout(0.3)
        self.ident = nn.Identity()
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1)
        self.c3 = nn.Conv2d(12, 2, 1)
        self.fc_w = nn.Parameter(torch.randn(5, 32) * 0.2)
        self.fc_b = nn.Parameter(torch.randn(5) * 0.1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(8, 3)
        self.gap = nn.AdaptiveAvgPool2d((1, 1))

    def forward(self, x):
        y = self.act(self.bn(F.conv2d(x, self.w, self.b, padding=1)))
        z = self.ident(self.drop(self.ht(self.c2(y)))).contiguous()
        s = F.relu(torch.add(z, y))
        p = self.pool(s)
        q = F.avg_pool2d(p, 2)
        u = F.relu(self.up(p))
        g = q.mean((2, 3), keepdim=True)
        h = self.gap(p)
        return {
            "cat": self.c3(torch.cat([u, y], 1)),
            "fc1": F.linear(q.view(q.size(0), -1), self.fc_w, self.fc_b),
            "fc2": self.fc(self.flat(g)),
            "pooled": h.reshape(h.shape[0], -1),
        }


def test_fx_forms_give_the_export_integers(monkeypatch):
    torch.manual_seed(2)
    m = Forms().eval()
    with torch.no_grad():
        m.bn.running_mean.uniform_(-0.3, 0.3)
        m.bn.running_var.uniform_(0.5, 1.5)
    rng = np.random.default_rng(2)
    cal = rng.standard_normal((32, 3, 8, 8)).astype(np.float32)
    test = rng.standard_normal((5, 3, 8, 8)).astype(np.float32)
    via_export = quantize_model(m, cal, progress=False)
    with monkeypatch.context() as mp:
        mp.setattr(torch.export, "export", export_off)
        via_fx = quantize_model(m, cal, progress=False)
    ops = [n.op for n in via_fx.prepared.nodes]
    for op in ("conv2d", "conv_transpose2d", "linear", "max_pool2d", "avg_pool2d", "add"):
        assert op in ops, op
    _assert_same_model(via_export, via_fx, test)
    with torch.no_grad():
        ref = list(m(torch.from_numpy(test)).values())
    for got, want in zip(via_fx.float_outputs(test), ref):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["denoise_unet", "small_resnet"])
def test_fx_and_export_agree_on_the_examples(name, monkeypatch):
    pytest.importorskip("skimage")
    from lowp import examples

    model = examples.load_torch(name)
    cal = examples.dataset(name, "calibration", 32)[0]
    test = examples.dataset(name, "test", 4)[0]
    via_export = quantize_model(model, cal, progress=False)
    with monkeypatch.context() as mp:
        mp.setattr(torch.export, "export", export_off)
        via_fx = quantize_model(model, cal, progress=False)
    _assert_same_model(via_export, via_fx, test)


# -- what the fx route refuses ----------------------------------------------------------------


class _One(nn.Module):
    """A convolution, then ``tail``."""

    def __init__(self, tail) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 4, 3)
        self.act = nn.Sigmoid()
        self.relu = nn.ReLU(inplace=True)
        self.tail = tail

    def forward(self, x):
        return self.tail(self, self.c(x))


def _inplace_unseen(m, y):
    m.relu(y)  # the result is dropped: eager PyTorch changed y, the fx graph did not
    return y


@pytest.mark.parametrize(
    "tail, match",
    [
        (lambda m, y: torch.sigmoid(y), r"torch\.fx node 'sigmoid' \(torch\.sigmoid\)"),
        (lambda m, y: m.act(y), r"torch\.fx node 'act' \(Sigmoid, module 'act'\).*Sigmoid"),
        (lambda m, y: y[:, :2], r"torch\.fx node 'getitem' .*indexes or slices"),
        (lambda m, y: y.permute(0, 2, 3, 1), r"'permute' \(Tensor\.permute\)"),
        (lambda m, y: y * 2.0, r"'mul' \(operator\.mul\)"),
        (lambda m, y: y + 1.0, r"'add' \(operator\.add\).*constant or a Python value"),
        (lambda m, y: F.dropout(y, 0.5), r"'dropout' .*training=True"),
        (
            lambda m, y: F.max_pool2d(y, 2, return_indices=True)[0],
            r"cannot quantize the operation torch\.nn\.functional\.max_pool2d_with_indices",
        ),
        (lambda m, y: F.adaptive_avg_pool2d(y, 2), r"adaptive average pooling to 2"),
        (_inplace_unseen, r"'relu' \(ReLU, module 'relu'\): works in place on 'c'"),
    ],
)
def test_fx_names_the_unsupported_node_before_calibration(tail, match, no_export):
    seen = []

    def batches():
        for _ in range(3):
            seen.append(1)
            yield np.zeros((2, 3, 8, 8), np.float32)

    with pytest.raises(UnsupportedModelError, match=match) as info:
        quantize_model(_One(tail).eval(), batches(), progress=False)
    assert EXPORT_OFF in str(info.value)  # why fx was used
    assert len(seen) == 1  # only the example batch was read


def test_fx_refuses_a_module_with_hooks(no_export):
    m = _One(lambda m, y: m.relu(y)).eval()
    m.c.register_forward_hook(lambda mod, args, out: out * 0.5)
    with pytest.raises(UnsupportedModelError, match=r"'c' \(Conv2d, module 'c'\).*hooks"):
        quantize_model(m, np.zeros((2, 3, 8, 8), np.float32), progress=False)


class Branchy(nn.Module):
    """Python control flow on a tensor's value: neither export nor fx."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        y = self.c(x)
        if y.sum() > 0:
            return y
        return -y


def test_when_both_routes_fail_the_error_gives_both_reasons():
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    with pytest.raises(UnsupportedModelError) as info:
        quantize_model(Branchy().eval(), x, progress=False)
    text = str(info.value)
    assert text.startswith("neither torch.export nor torch.fx could capture the model")
    assert "torch.export (" in text and "torch.fx (TraceError" in text
    assert "control flow" in text
    assert len(text.splitlines()) == 1


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 4, 3)

    def forward(self, x, y):
        return self.c(x) + self.c(y)


def test_fx_counts_the_inputs(no_export):
    with pytest.raises(UnsupportedModelError, match=r"forward takes 2 inputs \(x, y\)"):
        quantize_model(TwoInputs().eval(), np.zeros((2, 3, 8, 8), np.float32), progress=False)
