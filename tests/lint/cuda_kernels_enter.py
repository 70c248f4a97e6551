#!/usr/bin/env python3
"""Every kernel of the CUDA backend begins with cuda_pdl_enter() (engine/cuda/cuda_internal.h):
with programmatic dependent launch on, a kernel that read its inputs before that wait
could read them before the kernel that writes them has finished.  cuda_device.cu's
self-test kernel is no backend kernel (its own launch, no PDL).  Exit 1, naming each
kernel that does not, else 0."""
import glob
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXEMPT = {"cuda_device.cu"}


def kernels(text):
    """(name, first statement of the body) of each __global__ function definition."""
    for m in re.finditer(r"__global__", text):
        depth, k = 0, m.end()
        while k < len(text):
            c = text[k]
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
            elif c == ";" and depth == 0:
                break  # a declaration
            elif c == "{" and depth == 0:
                head = text[m.start():k]
                names = re.findall(r"(\w+)\s*\(", head)
                name = [n for n in names if n != "__launch_bounds__"][-1] if names else "?"
                body = text[k + 1:].lstrip()
                yield name, body.split(";", 1)[0].strip()
                break
            k += 1


def main():
    bad, seen = [], 0
    for path in sorted(glob.glob(os.path.join(ROOT, "engine", "cuda", "*.cu"))):
        if os.path.basename(path) in EXEMPT:
            continue
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for name, first in kernels(text):
            seen += 1
            if first != "cuda_pdl_enter()":
                bad.append(f"{os.path.relpath(path, ROOT)}: {name} begins with '{first[:60]}'")
    for b in bad:
        print(f"FAIL {b}: cuda_pdl_enter() must come first")
    print(f"{seen} kernels, {len(bad)} without cuda_pdl_enter() first")
    return 1 if bad or seen == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
