"""Read and replace an ONNX file's ``metadata_props`` without the ``onnx`` package.

The runtime depends on onnxruntime, which reads metadata but cannot write it, and a site's
workstation has no ``onnx``. ``ModelProto`` is a protobuf message whose top-level fields are
each a tag then a varint, a fixed-size or a length-prefixed value, so the file can be walked
field by field without knowing the schema: ``metadata_props`` is field 14, a repeated
``StringStringEntryProto {string key = 1; string value = 2;}``. :func:`replace_props` copies
every other field (the graph, opsets, producer, training info, functions) byte for byte, in
its place, and writes the new entries where the old ones stood, so the network cannot change.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

#: ``ModelProto.metadata_props`` and its entry's fields.
METADATA_PROPS_FIELD = 14
_KEY_FIELD = 1
_VALUE_FIELD = 2
#: Protobuf wire types: varint, 64-bit, length-delimited, 32-bit (3/4, groups, never in ONNX).
_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5


class OnnxPropsError(ValueError):
    """The bytes are not a protobuf message this reader can walk."""


def read_props(model_bytes: bytes) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file as a dict (later duplicates win, as in onnx)."""
    props: dict[str, str] = {}
    for number, _, start, end in _fields(model_bytes):
        if number == METADATA_PROPS_FIELD:
            key, value = _entry(memoryview(model_bytes)[start:end])
            props[key] = value
    return props


def replace_props(model_bytes: bytes, props: Mapping[str, str]) -> bytes:
    """The same ONNX file with ``metadata_props`` replaced by ``props`` (in their order).

    Every other top-level field is copied unchanged and in place. The new entries stand
    where the first old one stood; without one, before the first field numbered above 14
    (where protobuf serializers put it), else at the end.

    Raises:
        OnnxPropsError: the bytes are not a well-formed protobuf message.
        TypeError: a key or value is not text.
    """
    entries = b"".join(_encode_entry(key, value) for key, value in props.items())
    view = memoryview(model_bytes)
    parts: list[bytes | memoryview] = []
    inserted = False
    for number, field_start, _, end in _fields(model_bytes):
        if number == METADATA_PROPS_FIELD:
            if not inserted:
                parts.append(entries)
                inserted = True
            continue
        if number > METADATA_PROPS_FIELD and not inserted:
            parts.append(entries)
            inserted = True
        parts.append(view[field_start:end])
    if not inserted:
        parts.append(entries)
    return b"".join(parts)


def top_level_fields(model_bytes: bytes) -> list[tuple[int, bytes]]:
    """``(field number, the field's bytes including its tag)`` in file order (for checks)."""
    view = memoryview(model_bytes)
    return [(number, bytes(view[start:end])) for number, start, _, end in _fields(model_bytes)]


def _fields(data: bytes) -> Iterator[tuple[int, int, int, int]]:
    """``(number, field start, value start, end)`` of each top-level field of ``data``."""
    position, size = 0, len(data)
    while position < size:
        field_start = position
        tag, position = _varint(data, position)
        number, wire_type = tag >> 3, tag & 7
        if number == 0:
            raise OnnxPropsError(f"field number 0 at byte {field_start}: not a protobuf message")
        if wire_type == _VARINT:
            _, end = _varint(data, position)
            start = position
        elif wire_type == _FIXED64:
            start, end = position, position + 8
        elif wire_type == _FIXED32:
            start, end = position, position + 4
        elif wire_type == _LENGTH_DELIMITED:
            length, start = _varint(data, position)
            end = start + length
        else:
            raise OnnxPropsError(f"wire type {wire_type} at byte {field_start} is not used by ONNX")
        if end > size:
            raise OnnxPropsError(f"field {number} at byte {field_start} runs past the end")
        yield number, field_start, start, end
        position = end


def _varint(data, position: int) -> tuple[int, int]:
    """The varint at ``position`` and the position after it."""
    result, shift = 0, 0
    while True:
        if position >= len(data):
            raise OnnxPropsError("the file ends inside a varint")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
        if shift > 63:
            raise OnnxPropsError(f"a varint longer than 10 bytes at byte {position}")


def _entry(data: memoryview) -> tuple[str, str]:
    """Key and value of one ``StringStringEntryProto``."""
    values = {_KEY_FIELD: "", _VALUE_FIELD: ""}
    raw = bytes(data)
    for number, _, start, end in _fields(raw):
        if number in values:
            values[number] = raw[start:end].decode("utf-8")
    return values[_KEY_FIELD], values[_VALUE_FIELD]


def _encode_entry(key: str, value: str) -> bytes:
    if not isinstance(key, str) or not isinstance(value, str):
        raise TypeError(f"metadata_props keys and values are text, got {key!r}: {value!r}")
    body = _length_delimited(_KEY_FIELD, key.encode("utf-8")) + _length_delimited(
        _VALUE_FIELD, value.encode("utf-8")
    )
    return _length_delimited(METADATA_PROPS_FIELD, body)


def _length_delimited(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | _LENGTH_DELIMITED) + _encode_varint(len(payload)) + payload


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
