"""lowp.tflite without TensorFlow: a hand-written uint8 model checked against
lowp.reference, the bundled UNet, untrusted files, bad inputs, ``lowp run``."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import lowp
import lowp.tflite as lt
import tflite_models as tm
from lowp.cli import main


def _expected_conv(x: np.ndarray) -> np.ndarray:
    """The hand-written model's output from lowp.reference and TFLite's rules."""
    w, bias = tm.conv_weights()
    acc = lowp.reference.conv2d(x, w, tm.X_ZP, tm.W_ZP, stride=1, padding="same") + bias
    real = np.float64(np.float32(tm.X_SCALE)) * np.float64(np.float32(tm.W_SCALE))
    m0, shift = lowp.quantize_multiplier(real / np.float64(np.float32(tm.Y_SCALE)))
    # ReLU: the clamp starts at the output zero point
    return lowp.reference.requantize(acc, m0, shift, tm.Y_ZP, qmin=tm.Y_ZP, qmax=255)


def test_handwritten_conv_matches_reference(each_path):
    model = lt.load(tm.conv_model())
    assert [op.name for op in model.ops] == ["CONV_2D"]
    for seed in range(3):
        (x,) = model.random_inputs(seed)
        assert x.min() == 0 and x.max() == 255
        np.testing.assert_array_equal(model(x), _expected_conv(x))


def test_bundled_unet_runs(each_path):
    model = lt.load(lt.bundled_model())
    assert [op.name for op in model.ops].count("CONV_2D") == 9
    assert {"TRANSPOSE_CONV", "CONCATENATION", "MAX_POOL_2D"} <= {op.name for op in model.ops}
    (info,) = model.inputs
    assert info.dtype == np.int8 and info.shape == (1, 64, 64, 3)
    x = model.random_inputs(0)
    y = model(*x)
    assert y.dtype == np.int8 and y.shape == (1, 64, 64, 2)
    assert len(np.unique(y)) > 10  # a real output, not a constant
    np.testing.assert_array_equal(model(*x), y)


def test_bundled_unet_same_for_every_path_and_thread_count(threads):
    model = lt.load(lt.bundled_model())
    x = model.random_inputs(3)
    saved = lowp.get_path()
    results = []
    try:
        for path in lowp.cpu_info()["paths"]:
            lowp.set_path(path)
            for n in (1, 2):
                lowp.set_num_threads(n)
                results.append(model(*x))
    finally:
        lowp.set_path(saved)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_trace_and_profile():
    model = lt.load(tm.conv_model())
    (x,) = model.random_inputs(1)
    trace = model.trace(x)
    np.testing.assert_array_equal(trace[3], _expected_conv(x))
    outputs, timings = model.profile(x)
    np.testing.assert_array_equal(outputs[0], trace[3])
    assert [t.op for t in timings] == ["CONV_2D"] and timings[0].seconds >= 0
    assert timings[0].shapes == "1x6x7x2 -> 1x6x7x3"


def test_bad_call_arguments():
    model = lt.load(tm.conv_model())
    (x,) = model.random_inputs(0)
    with pytest.raises(TypeError, match="must be uint8"):
        model(x.astype(np.int8))
    with pytest.raises(ValueError, match=r"must have shape \(1, 6, 7, 2\)"):
        model(x[:, :5])
    with pytest.raises(TypeError, match="takes 1 input"):
        model(x, x)
    with pytest.raises(TypeError, match="path or bytes"):
        lt.load(42)


# --- untrusted files ----------------------------------------------------------------------


@pytest.mark.parametrize("cut", [0, 3, 7, 8, 16, 40, 100, 200, 400, -100, -20])
def test_truncated_file(cut):
    data = tm.conv_model()
    with pytest.raises(lt.ModelError, match="model"):
        lt.load(data[:cut])


def test_not_a_tflite_file():
    with pytest.raises(lt.ModelError, match="TFL3"):
        lt.load(b"\x00" * 64)
    with pytest.raises(lt.ModelError, match="too short"):
        lt.load(b"TFL3")


def test_tensor_index_out_of_range():
    spec = tm.conv_spec()
    spec.ops[0].inputs = [0, 1, 9]
    with pytest.raises(lt.ModelError, match="refers to tensor 9, but there are 4"):
        lt.load(tm.write(spec))
    spec = tm.conv_spec(outputs=[-2])
    with pytest.raises(lt.ModelError, match="graph output refers to tensor -2"):
        lt.load(tm.write(spec))


def test_buffer_index_out_of_range():
    spec = tm.conv_spec()
    spec.tensors[1].buffer = 17
    with pytest.raises(lt.ModelError, match="refers to buffer 17, but there are 3"):
        lt.load(tm.write(spec))


def test_buffer_shorter_than_shape():
    spec = tm.conv_spec()
    spec.buffers[1] = spec.buffers[1][:-1]
    with pytest.raises(lt.ModelError, match=r"holds 53 bytes, its shape .* needs 54"):
        lt.load(tm.write(spec))


def test_shape_that_does_not_fit_the_op():
    spec = tm.conv_spec()
    spec.tensors[3].shape = [1, 6, 7, 4]
    with pytest.raises(
        lt.ModelError, match=r"shape \[1, 6, 7, 4\], the op computes \[1, 6, 7, 3\]"
    ):
        lt.load(tm.write(spec))
    spec = tm.conv_spec()
    spec.tensors[0].shape = [1, 6, 7, 5]
    with pytest.raises(lt.ModelError, match=r"5 .*channels|input channels"):
        lt.load(tm.write(spec))
    spec = tm.conv_spec()
    spec.tensors[2].shape = [2]
    spec.buffers[2] = spec.buffers[2][:8]
    with pytest.raises(lt.ModelError, match="bias must have 3 values"):
        lt.load(tm.write(spec))


def test_huge_shape_refused():
    spec = tm.conv_spec()
    spec.tensors[0].shape = [1, 100000, 100000, 2]
    with pytest.raises(lt.ModelError, match="more than"):
        lt.load(tm.write(spec))


def test_unsupported_op_named_at_load():
    spec = tm.conv_spec(opcodes=[tm.SOFTMAX])
    with pytest.raises(lt.UnsupportedOpError, match="SOFTMAX"):
        lt.load(tm.write(spec))


def test_op_reading_an_unwritten_tensor():
    spec = tm.conv_spec(inputs=[3], outputs=[3])
    with pytest.raises(lt.ModelError, match="before anything writes it"):
        lt.load(tm.write(spec))


def test_non_positive_scale():
    spec = tm.conv_spec()
    spec.tensors[3].scale = [0.0]
    with pytest.raises(lt.ModelError, match="non-positive scale"):
        lt.load(tm.write(spec))


def test_corrupted_bytes_never_crash():
    data = tm.conv_model()
    rng = np.random.default_rng(0)
    loaded = 0
    for pos in range(len(data)):
        for value in (0x00, 0xFF, int(rng.integers(0, 256))):
            bad = bytearray(data)
            bad[pos] = value
            try:
                model = lt.load(bytes(bad))
            except lt.ModelError:
                continue
            loaded += 1
            try:  # whatever loads must run or refuse its input cleanly
                model(*model.random_inputs(0))
            except (TypeError, ValueError):
                pass
    assert loaded > 0  # bytes of weights and names change nothing structural


# --- lowp run -----------------------------------------------------------------------------


def test_cli_run_bundled(capsys):
    assert main(["run", "--repeats", "1", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "unet_int8.tflite" in out and "TRANSPOSE_CONV" in out and "total" in out
    assert "1x64x64x3 -> 1x64x64x16" in out
    arena = lt.load(lt.bundled_model()).arena_bytes
    assert f"arena:   {arena} bytes of activations" in out


def test_cli_run_input_output(tmp_path, capsys):
    path = tmp_path / "conv.tflite"
    path.write_bytes(tm.conv_model())
    x = lt.load(path).random_inputs(5)[0]
    np.save(tmp_path / "x.npy", x)
    code = main(["run", str(path), "--input", str(tmp_path / "x.npy"), "--output",
                 str(tmp_path / "y.npy"), "--repeats", "2"])  # fmt: skip
    assert code == 0
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), _expected_conv(x))
    assert "CONV_2D" in capsys.readouterr().out


def test_cli_run_errors(tmp_path, capsys):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(tm.conv_model()[:50])
    assert main(["run", str(bad)]) == 2
    assert "lowp run: error:" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "missing.tflite")]) == 2
    assert "cannot read" in capsys.readouterr().err
    np.save(tmp_path / "x.npy", np.zeros((1, 2), np.uint8))
    good = tmp_path / "conv.tflite"
    good.write_bytes(tm.conv_model())
    assert main(["run", str(good), "--input", str(tmp_path / "x.npy")]) == 2
    assert "must have shape" in capsys.readouterr().err


def test_vector_options_read_as_tuples():
    """ReshapeOptions.new_shape is one field, a tuple (None when absent),
    not its generated helpers NewShapeLength / AsNumpy / IsNone."""
    import tflite_fuzz as fz
    from lowp.tflite._schema import parse

    graph = parse(fz.encode(fz.zoo("int8")))
    (reshape,) = [op for op in graph.ops if op.name == "RESHAPE"]
    assert reshape.options is not None
    assert reshape.options.values == {"NewShape": (1, 288)}
    assert reshape.options.NewShape() == (1, 288)
    (conv,) = [op for op in graph.ops if op.name == "CONV_2D"]
    assert conv.options is not None and conv.options != reshape.options
    assert conv.options == copy.deepcopy(conv.options)
    assert repr(conv.options).startswith("Options('Conv2DOptions', {'Padding': ")
