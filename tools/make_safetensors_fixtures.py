#!/usr/bin/env python3
"""Make tests/fixtures/safetensors/reference.safetensors with the reference
implementation (Hugging Face's `safetensors`, Rust core), so the C reader is tested
against bytes it did not write itself.  CI never runs this script; the file is
committed (a few hundred bytes).  tests/unit/test_safetensors.c holds the same
values; change both together.

Usage:
    python -m venv /tmp/stvenv && /tmp/stvenv/bin/pip install safetensors numpy
    /tmp/stvenv/bin/python tools/make_safetensors_fixtures.py

    # the other direction: load a file diffusiond wrote with the reference library
    /tmp/stvenv/bin/python tools/make_safetensors_fixtures.py --check FILE
"""
import argparse
import os
import sys

import numpy as np
import safetensors
from safetensors import TensorSpec, safe_open, serialize

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "safetensors",
                   "reference.safetensors")


def bf16_bits(values):
    """Top 16 bits of f32 (the values below are exact in bf16)."""
    return (np.asarray(values, dtype="<f4").view("<u4") >> 16).astype("<u2")


def tensors():
    """name -> (reference dtype name, shape, little-endian numpy array of the bytes)."""
    return {
        "w32": ("float32", [2, 3], (np.arange(6, dtype="<f4") * 0.25 - 1.0)),
        "w16": ("float16", [2, 2], np.array([1.0, -2.0, 0.5, 65504.0], dtype="<f2")),
        "wbf": ("bfloat16", [3], bf16_bits([1.0, -3.0, 0.015625])),
        "w64": ("float64", [2], np.array([0.1, -1e10], dtype="<f8")),
        "ids": ("int64", [3], np.array([1, 2, 3], dtype="<i8")),
        "s": ("float32", [], np.array(7.5, dtype="<f4")),
        "z": ("float16", [0, 4], np.zeros((0, 4), dtype="<f2")),
        "e4": ("float8_e4m3fn", [2], np.array([0x38, 0xC0], dtype="u1")),
    }


def make():
    arrays = tensors()
    specs = {
        name: TensorSpec(dtype=dtype, shape=shape, data_ptr=arr.ctypes.data,
                         data_len=arr.nbytes)
        for name, (dtype, shape, arr) in arrays.items()
    }
    meta = {"format": "pt", "source": "safetensors " + safetensors.__version__}
    data = bytes(serialize(specs, metadata=meta))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "wb") as f:
        f.write(data)
    print(f"wrote {os.path.normpath(OUT)} ({len(data)} bytes)")


def check(path):
    with safe_open(path, framework="numpy") as f:
        print("metadata:", f.metadata())
        for key in f.keys():
            sl = f.get_slice(key)
            try:
                values = f.get_tensor(key).ravel()[:8].tolist()
            except (AttributeError, TypeError):  # bf16/fp8: no numpy dtype
                values = "(no numpy dtype)"
            print(f"{key}: {sl.get_dtype()} {sl.get_shape()} {values}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", metavar="FILE", help="load FILE with the reference reader")
    args = ap.parse_args()
    if args.check:
        check(args.check)
    else:
        make()
    return 0


if __name__ == "__main__":
    sys.exit(main())
