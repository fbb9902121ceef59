"""``lowp quantize``: an ONNX file and a .npy calibration set in; a .tflite
or ONNX file, a JSON report and a plot out; bad arguments are exit status 2
with a message."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

import lowp.tflite as lt  # noqa: E402
from lowp import cli  # noqa: E402
from test_quantize_model import Net, _onnx_bytes  # noqa: E402


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    cal = rng.standard_normal((24, 3, 8, 8)).astype(np.float32)
    (d / "net.onnx").write_bytes(_onnx_bytes(Net().eval(), cal[:2]))
    np.save(d / "cal.npy", cal)
    np.save(d / "test.npy", cal[:6])
    return d


def test_quantize_writes_everything(files, tmp_path, capsys):
    out, rep, png = tmp_path / "m.tflite", tmp_path / "r.json", tmp_path / "r.png"
    args = [
        str(files / "net.onnx"),
        "--calibration",
        str(files / "cal.npy"),
        "--samples",
        str(files / "test.npy"),
        "-o",
        str(out),
        "--report",
        str(rep),
    ]
    if _have_matplotlib():
        args += ["--plot", str(png)]
    assert cli.main(["quantize", *args]) == 0
    text = capsys.readouterr().out
    assert "SQNR" in text and f"wrote {out}" in text
    model = lt.load(out)
    assert model.inputs[0].dtype == np.int8
    # lowp run runs the exported file
    assert cli.main(["run", str(out), "--repeats", "1"]) == 0
    assert "CONV_2D" in capsys.readouterr().out
    report = json.loads(rep.read_text())
    assert report["samples"] == 6 and report["scheme"] == "int8"
    assert all(layer["sqnr_propagated"] > 20 for layer in report["layers"])
    if _have_matplotlib():
        assert png.read_bytes()[:4] == b"\x89PNG"


def test_quantize_to_onnx_uint8(files, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    status = cli.main(
        [
            "quantize",
            str(files / "net.onnx"),
            "--calibration",
            str(files / "cal.npy"),
            "--scheme",
            "uint8",
            "-o",
            str(out),
            "--quiet",
        ]
    )
    assert status == 0
    import onnx

    kinds = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert "QuantizeLinear" in kinds
    assert "SQNR" not in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["nothing.onnx", "--calibration", "{d}/cal.npy"], "nothing.onnx"),
        (["{d}/net.onnx"], "--calibration"),
        (["{d}/net.onnx", "--calibration", "{d}/missing.npy"], "no such file"),
        (["{d}/net.onnx", "--calibration", "{d}/net.onnx"], "not a .npy"),
        (["{d}/net.onnx", "--calibration", "{d}/cal.npy", "-o", "{d}/m.txt"], "must end"),
        (["{d}/net.onnx", "--calibration", "{d}/cal.npy", "--weight-bits", "9"], "weight_bits"),
        (["resnet50", "--calibration", "{d}/cal.npy"], "neither"),
    ],
)
def test_quantize_bad_arguments(files, args, message, capsys):
    filled = [a.format(d=files) for a in args]
    assert cli.main(["quantize", *filled]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lowp quantize:") and message in err
    assert not (files / "m.txt").exists()


def _have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True
