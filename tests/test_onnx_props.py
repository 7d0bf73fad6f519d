"""metadata_props rewritten without the onnx package (mammo_edge/model/onnx_props.py), checked
against onnx itself and onnxruntime."""

from __future__ import annotations

import pytest
from conftest import REPO_ROOT, build_tiny_model

from mammo_edge.model.onnx_props import (
    METADATA_PROPS_FIELD,
    OnnxPropsError,
    read_props,
    replace_props,
    top_level_fields,
)

onnx = pytest.importorskip("onnx")

NEW_PROPS = {"mammo_edge.model_name": "renamed", "site.note": "ünïcode ✓ " + "x" * 300}


def _without_props(data: bytes) -> list:
    return [field for field in top_level_fields(data) if field[0] != METADATA_PROPS_FIELD]


def _check(original: bytes, props: dict) -> bytes:
    rewritten = replace_props(original, props)
    assert _without_props(rewritten) == _without_props(original)
    before, after = onnx.load_from_string(original), onnx.load_from_string(rewritten)
    assert after.graph.SerializeToString() == before.graph.SerializeToString()
    assert {p.key: p.value for p in after.metadata_props} == props
    assert [p.key for p in after.metadata_props] == list(props)
    assert read_props(rewritten) == props
    return rewritten


def test_read_props_agrees_with_onnx(tmp_path):
    data = build_tiny_model(tmp_path / "tiny.onnx").read_bytes()
    expected = {p.key: p.value for p in onnx.load_from_string(data).metadata_props}
    assert read_props(data) == expected and "mammo_edge.model_name" in expected


def test_replacing_props_keeps_every_other_byte_and_onnxruntime_reads_them(tmp_path):
    import onnxruntime

    data = build_tiny_model(tmp_path / "tiny.onnx").read_bytes()
    props = {**read_props(data), **NEW_PROPS}
    rewritten = _check(data, props)
    session = onnxruntime.InferenceSession(rewritten, providers=["CPUExecutionProvider"])
    assert session.get_modelmeta().custom_metadata_map == props
    assert _check(rewritten, read_props(data)) == data  # and back, byte for byte


def test_props_are_added_to_a_model_without_any(tmp_path):
    model = onnx.load(str(build_tiny_model(tmp_path / "tiny.onnx")))
    del model.metadata_props[:]
    _check(model.SerializeToString(), NEW_PROPS)


def test_a_shipped_tf2onnx_file_keeps_its_network():
    shipped = REPO_ROOT / "mammo_edge" / "models" / "seed.onnx"
    if not shipped.is_file():
        pytest.skip("seed.onnx is not shipped in this checkout")
    data = shipped.read_bytes()
    _check(data, {**read_props(data), **NEW_PROPS})
    assert shipped.read_bytes() == data


@pytest.mark.parametrize(
    "data",
    [b"\x0a\xff\x01abc", b"\x08", b"\x00\x01", b"\x0b\x00"],
    ids=["past the end", "inside a varint", "field 0", "a group"],
)
def test_bytes_that_are_not_a_message_are_refused(data):
    with pytest.raises(OnnxPropsError):
        replace_props(data, {"a": "b"})
