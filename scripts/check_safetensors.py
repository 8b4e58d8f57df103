#!/usr/bin/env python3
"""Reads a .safetensors file with nothing but the standard library and NumPy, and prints what is in it.

    python3 scripts/check_safetensors.py checkpoint.safetensors

For each tensor: name, dtype, shape and a checksum (CRC32 of its bytes, plus the sum of its values), so
two files, or a file and what glance printed, can be compared by eye. If the `safetensors` package is
installed, the file is also loaded with safetensors.numpy.load_file and every tensor is checked to be
identical, which shows that glance's writer agrees with the reference implementation.

The format (https://huggingface.co/docs/safetensors): 8 bytes little-endian u64 header length N, N bytes of
JSON header {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, then the
byte buffer; offsets count from the start of the buffer. This script is a second, independent reader
for glance's nn/safetensors.cpp, not part of the test suite.
"""
import json
import struct
import sys
import zlib

import numpy as np

# safetensors dtype codes -> NumPy dtypes (little-endian, as the format requires).
DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1",
    "BOOL": "?",
}


def read(path):
    """Returns (metadata dict, {name: ndarray}) after checking the layout."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: shorter than 8 bytes")
    (n,) = struct.unpack("<Q", data[:8])
    if n == 0 or n > len(data) - 8:
        raise ValueError(f"{path}: bad header length {n} for a file of {len(data)} bytes")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    buffer = data[8 + n:]
    metadata = header.pop("__metadata__", {})
    tensors = {}
    spans = []
    for name, info in header.items():
        dtype = np.dtype(DTYPES[info["dtype"]])
        shape = tuple(info["shape"])
        begin, end = info["data_offsets"]
        count = int(np.prod(shape, dtype=np.int64))
        if end - begin != count * dtype.itemsize or end > len(buffer):
            raise ValueError(f"{path}: tensor {name!r} has offsets {begin, end} for {info['dtype']} {list(shape)}")
        tensors[name] = np.frombuffer(buffer, dtype=dtype, count=count, offset=begin).reshape(shape)
        spans.append((begin, end, name))
    # The buffer must be tiled exactly: no overlaps, no holes, nothing after the last tensor.
    cursor = 0
    for begin, end, name in sorted(spans):
        if begin != cursor:
            raise ValueError(f"{path}: tensor {name!r} starts at {begin}, expected {cursor}")
        cursor = end
    if cursor != len(buffer):
        raise ValueError(f"{path}: {len(buffer) - cursor} bytes after the last tensor")
    return metadata, tensors, n


def main():
    if len(sys.argv) != 2:
        print("usage: python3 scripts/check_safetensors.py FILE.safetensors", file=sys.stderr)
        sys.exit(2)
    path = sys.argv[1]
    metadata, tensors, header_length = read(path)
    print(f"{path}: header {header_length} bytes (multiple of 8: {header_length % 8 == 0}), "
          f"{len(tensors)} tensors")
    for key, value in sorted(metadata.items()):
        print(f"  metadata {key} = {value}")
    for name in sorted(tensors):
        t = tensors[name]
        code = next(k for k, v in DTYPES.items() if np.dtype(v) == t.dtype)
        crc = zlib.crc32(t.tobytes()) & 0xFFFFFFFF
        total = t.astype(np.float64).sum() if t.size else 0.0
        print(f"  {name:<32} {code:<5} {str(list(t.shape)):<16} crc32={crc:08x} sum={total:.9g}")

    try:
        from safetensors.numpy import load_file
        from safetensors import safe_open
    except ImportError:
        print("safetensors package not installed: skipped the cross-check")
        return
    reference = load_file(path)
    assert sorted(reference) == sorted(tensors), (sorted(reference), sorted(tensors))
    for name, t in tensors.items():
        r = reference[name]
        assert r.dtype == t.dtype and r.shape == t.shape, (name, r.dtype, r.shape, t.dtype, t.shape)
        assert r.tobytes() == t.tobytes(), name
    with safe_open(path, framework="numpy") as f:
        assert (f.metadata() or {}) == metadata, (f.metadata(), metadata)
    print(f"safetensors.numpy.load_file agrees: {len(reference)} tensors identical, metadata identical")


if __name__ == "__main__":
    main()
