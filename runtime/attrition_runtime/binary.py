"""The binary tensor data extension of the V2 REST protocol (Triton's and KServe's), as bytes: a JSON
header of ``Inference-Header-Content-Length`` bytes, then each binary tensor's bytes in the order of its
tensor, little-endian, BYTES elements each behind a 4-byte little-endian length.

Hand-written rather than taken from a library: tritonclient's helpers are client-side (not in the
image) and MLServer's ``mlserver.raw`` unpacks into Python lists without bounds checks. Here every
length is checked against the body before it is used, so a malformed body is a :class:`MalformedBody`
(HTTP 400) naming what was wrong, and numeric tensors become numpy arrays with one ``frombuffer``.
Imports neither mlserver nor tritonclient (see wire.py).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterable

import numpy as np

#: The request and response header that says how long the JSON part of a body is.
HEADER_LENGTH = "Inference-Header-Content-Length"
BINARY_MEDIA_TYPE = "application/octet-stream"
#: Little-endian numpy dtypes of the fixed-size V2 datatypes (BOOL: one byte, 0 or 1).
DTYPES = {
    "BOOL": "?",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}
ITEMSIZES = {datatype: np.dtype(dtype).itemsize for datatype, dtype in DTYPES.items()}
_PREFIX = 4  # bytes of a BYTES element's length
_LENGTH = struct.Struct("<I")


class MalformedBody(ValueError):
    """A body that does not follow the extension: HTTP 400 with this message."""


def header_length(value: str, body_length: int) -> int:
    """The ``Inference-Header-Content-Length`` value, checked against the body it describes."""
    try:
        length = int(value)
    except ValueError:
        raise MalformedBody(f"{HEADER_LENGTH}: got {value[:40]!r}; expected a byte count") from None
    if not 0 < length <= body_length:
        raise MalformedBody(
            f"{HEADER_LENGTH}: got {length}; expected 1 to {body_length} (the body has {body_length} bytes)"
        )
    return length


def split(body: bytes, length: int) -> tuple[dict, memoryview]:
    """The JSON header (an object) and the binary part of a body."""
    try:
        header = json.loads(body[:length].decode("utf-8"))
    except UnicodeDecodeError as error:
        raise MalformedBody(f"body: the JSON header is not valid UTF-8 (byte {error.start})") from None
    except json.JSONDecodeError as error:
        raise MalformedBody(f"body: the JSON header is not valid JSON ({error.msg} at {error.pos})") from None
    if not isinstance(header, dict):
        raise MalformedBody(f"body: the JSON header is a {type(header).__name__}; expected an object")
    return header, memoryview(body)[length:]


def take_inputs(header: dict, binary: memoryview) -> dict[int, np.ndarray | list[bytes]]:
    """The binary inputs of a request, by their index in ``header["inputs"]``, each decoded from its
    section of ``binary``; their ``binary_data_size`` parameters are removed from the header. Inputs
    without one keep their JSON ``data`` (mixed requests)."""
    inputs = header.get("inputs")
    if not isinstance(inputs, list):
        raise MalformedBody(f"inputs: got {type(inputs).__name__}; expected a list of tensors")
    decoded, offset = {}, 0
    for index, tensor in enumerate(inputs):
        size = _binary_size(tensor, index)
        if size is None:
            continue
        name = _name(tensor, index)
        if offset + size > len(binary):
            raise MalformedBody(
                f"{name}: binary_data_size {size} runs past the end of the body "
                f"({len(binary) - offset} bytes left)"
            )
        if "data" in tensor:
            raise MalformedBody(f"{name}: has both data and binary_data_size; expected one of them")
        decoded[index] = decode_tensor(name, tensor.get("datatype"), binary[offset : offset + size])
        offset += size
    if offset != len(binary):
        raise MalformedBody(f"body: {len(binary) - offset} bytes after the last binary input's data")
    return decoded


def _name(tensor: object, index: int) -> str:
    name = tensor.get("name") if isinstance(tensor, dict) else None
    return name if isinstance(name, str) else f"inputs[{index}]"


def _binary_size(tensor: object, index: int) -> int | None:
    if not isinstance(tensor, dict):
        raise MalformedBody(f"inputs[{index}]: got {type(tensor).__name__}; expected a tensor object")
    parameters = tensor.get("parameters")
    if not isinstance(parameters, dict) or "binary_data_size" not in parameters:
        return None
    size = parameters.pop("binary_data_size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise MalformedBody(
            f"{_name(tensor, index)}: binary_data_size {size!r}; expected a byte count (an integer >= 0)"
        )
    return size


def decode_tensor(name: str, datatype: object, raw: memoryview) -> np.ndarray | list[bytes]:
    """One tensor's bytes: a read-only numpy array, or for BYTES the list of its elements (pickled to the
    worker as fast as an array would be, and decoded there by MLServer's string codec)."""
    if datatype == "BYTES":
        return unpack_bytes(name, raw)
    if datatype not in DTYPES:
        raise MalformedBody(f"{name}: datatype {datatype!r}; expected BYTES or one of {list(DTYPES)}")
    itemsize = ITEMSIZES[datatype]
    if len(raw) % itemsize:
        raise MalformedBody(
            f"{name}: binary_data_size {len(raw)} is not a whole number of {datatype} values "
            f"({itemsize} bytes each)"
        )
    return np.frombuffer(raw, dtype=DTYPES[datatype])


def unpack_bytes(name: str, raw: memoryview) -> list[bytes]:
    """BYTES elements, each behind its 4-byte little-endian length."""
    data, elements, offset = bytes(raw), [], 0
    end, length = len(data), _LENGTH.unpack_from
    append = elements.append
    while offset < end:
        if offset + _PREFIX > end:
            raise MalformedBody(f"{name}: BYTES data ends inside an element's 4-byte length")
        (size,) = length(data, offset)
        offset += _PREFIX
        if offset + size > end:
            raise MalformedBody(
                f"{name}: a BYTES element of {size} bytes runs past its tensor's data ({end - offset} left)"
            )
        append(data[offset : offset + size])
        offset += size
    return elements


def pack_bytes(values: Iterable[bytes | str]) -> bytes:
    """BYTES elements as the extension sends them: each behind its 4-byte little-endian length."""
    parts = []
    for value in values:
        encoded = value.encode() if isinstance(value, str) else bytes(value)
        parts += (len(encoded).to_bytes(_PREFIX, "little"), encoded)
    return b"".join(parts)


def pack_tensor(datatype: str, data: object) -> bytes:
    """An output's values (a list or an array, as the codecs give them) as binary data."""
    if datatype == "BYTES":
        return pack_bytes(np.asarray(data, dtype=object).reshape(-1))
    return np.ascontiguousarray(data, dtype=DTYPES[datatype]).tobytes()


def wants_binary(request_header: dict) -> tuple[bool, dict[str, bool]]:
    """What the request asked for: every output binary (``parameters.binary_data_output``), and the
    outputs that say so themselves (``outputs[].parameters.binary_data``), which win."""
    parameters = request_header.get("parameters")
    every = isinstance(parameters, dict) and parameters.get("binary_data_output") is True
    each = {}
    for output in request_header.get("outputs") or []:
        if isinstance(output, dict) and isinstance(output.get("parameters"), dict):
            flag = output["parameters"].get("binary_data")
            if isinstance(flag, bool) and isinstance(output.get("name"), str):
                each[output["name"]] = flag
    return every, each


def encode_response(
    response: dict, every: bool, each: dict[str, bool], dumps: Callable[[dict], bytes] | None = None
) -> tuple[bytes, int | None]:
    """A V2 response (a dict, as MLServer dumps it) as a body: JSON alone when no output is asked for
    as binary (length None), else the JSON header and the binary outputs after it (its length).
    ``dumps``: the server's JSON encoder (MLServer's, orjson), else the standard library's."""
    sections = []
    for output in response.get("outputs") or []:
        if not each.get(output["name"], every):
            continue
        raw = pack_tensor(output["datatype"], output.pop("data"))
        output["parameters"] = {**(output.get("parameters") or {}), "binary_data_size": len(raw)}
        sections.append(raw)
    header = (dumps or _dumps)(response)
    if not sections:
        return header, None
    return b"".join([header, *sections]), len(header)


def _dumps(value: dict) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=_jsonable).encode()


def _jsonable(value: object) -> object:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
