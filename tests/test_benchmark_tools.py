"""The benchmark tools moved out of reports/: INT8 sweep exclusions and bare-session timing."""

import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402


def conv_graph():
    """first conv, expand (-> Clip), depthwise (group 4), project, Add, head conv, Sigmoid."""

    def weight(name, shape):
        return helper.make_tensor(name, TensorProto.FLOAT, shape, np.ones(shape).ravel())

    nodes = [
        helper.make_node("Conv", ["image", "w0"], ["a"], name="first"),
        helper.make_node("Conv", ["a", "w1"], ["b"], name="expand"),
        helper.make_node("Clip", ["b"], ["c"], name="clip"),
        helper.make_node("Conv", ["c", "w2"], ["d"], name="depthwise", group=4),
        helper.make_node("Conv", ["d", "w3"], ["e"], name="project"),
        helper.make_node("Add", ["e", "a"], ["f"], name="residual"),
        helper.make_node("Conv", ["f", "w4"], ["g"], name="head_conv"),
        helper.make_node("Conv", ["g", "w5"], ["h"], name="cell_logit"),
        helper.make_node("Sigmoid", ["h"], ["probability"], name="sigmoid"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, None)],
        [
            weight("w0", [4, 1, 1, 1]),
            weight("w1", [4, 4, 1, 1]),
            weight("w2", [4, 1, 1, 1]),
            weight("w3", [4, 4, 1, 1]),
            weight("w4", [4, 4, 1, 1]),
            weight("w5", [1, 4, 1, 1]),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize(
    ("keep", "expected"),
    [
        ("none", []),
        ("first,head", ["first", "cell_logit", "sigmoid"]),
        ("first,head,dw", ["first", "cell_logit", "sigmoid", "depthwise"]),
        ("first,head,expand", ["first", "cell_logit", "sigmoid", "expand"]),
        ("first,head,proj", ["first", "cell_logit", "sigmoid", "project"]),
        ("head,add", ["cell_logit", "sigmoid", "residual"]),
        ("headconv", ["head_conv"]),
    ],
)
def test_sweep_keeps_the_named_parts_in_fp32(keep, expected):
    from benchmarks.int8_sweep import excluded_nodes

    assert excluded_nodes(conv_graph(), keep) == expected


def test_sweep_refuses_an_unknown_part():
    from benchmarks.int8_sweep import excluded_nodes

    with pytest.raises(ValueError, match="unknown part"):
        excluded_nodes(conv_graph(), "first,stem")


def test_session_speed_times_every_file_and_spinning(tmp_path, capsys):
    from benchmarks.session_speed import main

    model = helper.make_model(
        helper.make_graph(
            [helper.make_node("ReduceMean", ["image"], ["probability"], keepdims=0)],
            "mean",
            [helper.make_tensor_value_info("image", TensorProto.FLOAT, [None, 8, 4, 1])],
            [helper.make_tensor_value_info("probability", TensorProto.FLOAT, None)],
        ),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    path = tmp_path / "mean.onnx"
    onnx.save(model, str(path))
    out = tmp_path / "speed.json"
    arguments = [str(path), str(path), "--spinning", "both", "--rounds", "2", "--calls", "1"]
    assert main([*arguments, "--batch", "2", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [row["spinning"] for row in rows] == [True, False, True, False]
    assert all(row["wall_ms"] > 0 and row["cpu_ms"] >= 0 for row in rows)
    assert len(capsys.readouterr().out.splitlines()) == 4
