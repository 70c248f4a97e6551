#!/usr/bin/env python3
"""Independent evaluator for diffusiond's bundled shapes model.

Written apart from tools/train/ on purpose: it does not import the training data code.
It writes its own held-out prompts from a small grammar, has the C pipeline draw them
(`diffusiond generate`, one process per prompt+seed), and reads each picture back with
plain pixel statistics:

  background  the median colour of the 2-pixel border  -> nearest named colour
  shape       pixels far (> --threshold in RGB) from that background colour, largest
              4-connected component; its interior mean colour -> nearest named colour
  kind        fill ratio of its bounding box (circle pi/4 ~ 0.79, square 1, triangle
              0.5) and the share of its area in the top half of the box (triangle
              0.25, the others 0.5): the nearest of the three prototypes
  position    (when the prompt names one) the quadrant / centre of the shape's centroid
  size        (when the prompt names one) its area against a threshold

    python tools/eval/evaluate.py --diffusiond build/server/diffusiond --model models/default \\
        --n 240 --out /tmp/eval              # -> /tmp/eval/summary.json, results.csv, sheet.png
    python tools/eval/evaluate.py --images DIR    # score PNGs named by prompts.json instead

Needs only numpy and Pillow.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

# Canonical (idealised) colours of the names, chosen here, not copied from training.
NAMED = {
    "red": (255, 0, 0), "green": (0, 160, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0),
    "white": (255, 255, 255), "black": (0, 0, 0), "orange": (255, 140, 0),
    "purple": (128, 0, 128),
}
KINDS = {"circle": (np.pi / 4, 0.5), "square": (1.0, 0.5), "triangle": (0.5, 0.25)}
POSITIONS = ["center", "top left", "top right", "bottom left", "bottom right"]


# ------------------------------------------------------------------------- prompts

def make_prompts(n, seed):
    """n (prompt, expectation) pairs from the grammar, balanced over templates."""
    rng = np.random.default_rng(seed)
    names = list(NAMED)
    out = []
    for i in range(n):
        col = names[rng.integers(len(names))]
        bg = col
        while bg == col:
            bg = names[rng.integers(len(names))]
        kind = list(KINDS)[rng.integers(3)]
        size = ["small", "large"][rng.integers(2)]
        pos = POSITIONS[rng.integers(len(POSITIONS))]
        where = "in the center" if pos == "center" else f"at the {pos}"
        art = "an" if col[0] in "aeiou" else "a"
        on = "on an" if bg[0] in "aeiou" else "on a"
        tmpl = i % 4
        exp = dict(colour=col, background=bg, kind=kind)
        if tmpl == 0:
            prompt = f"a {size} {col} {kind} {where} {on} {bg} background"
            exp.update(size=size, position=pos)
        elif tmpl == 1:
            prompt = f"{art} {col} {kind} {on} {bg} background"
        elif tmpl == 2:
            prompt = f"{art} {col} {kind} {where} {on} {bg} background"
            exp.update(position=pos)
        else:
            prompt = f"a {size} {col} {kind} {on} {bg} background"
            exp.update(size=size)
        out.append(dict(prompt=prompt, seed=int(1_000_000 + seed * 1000 + i), expect=exp))
    return out


# ------------------------------------------------------------------------ analysis

def nearest(rgb):
    d = {k: float(np.linalg.norm(np.asarray(rgb, float) - np.asarray(v, float))) for k, v in NAMED.items()}
    return min(d, key=d.get)


def largest_component(mask):
    h, w = mask.shape
    seen = np.zeros_like(mask, bool)
    best = None
    for y0, x0 in zip(*np.nonzero(mask)):
        if seen[y0, x0]:
            continue
        comp, q = [], deque([(y0, x0)])
        seen[y0, x0] = True
        while q:
            y, x = q.popleft()
            comp.append((y, x))
            for yy, xx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= yy < h and 0 <= xx < w and mask[yy, xx] and not seen[yy, xx]:
                    seen[yy, xx] = True
                    q.append((yy, xx))
        if best is None or len(comp) > len(best):
            best = comp
    out = np.zeros_like(mask, bool)
    if best:
        ys, xs = zip(*best)
        out[list(ys), list(xs)] = True
    return out


def analyse(img, threshold=60.0):
    """img: uint8 HxWx3 -> dict of what is seen."""
    a = img.astype(np.float64)
    h, w, _ = a.shape
    border = np.concatenate([a[:2].reshape(-1, 3), a[-2:].reshape(-1, 3),
                             a[:, :2].reshape(-1, 3), a[:, -2:].reshape(-1, 3)])
    bg = np.median(border, axis=0)
    dist = np.linalg.norm(a - bg, axis=2)
    mask = largest_component(dist > threshold)
    res = dict(background=nearest(bg), bg_rgb=[round(v) for v in bg], area=int(mask.sum()))
    if mask.sum() < 12:
        res.update(colour=None, kind=None, position=None, fill=None, top=None)
        return res
    # interior: pixels whose 4 neighbours are in the mask (edges are blended)
    m = np.pad(mask, 1)
    inner = mask & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
    pix = a[inner] if inner.sum() >= 4 else a[mask]
    fg = np.median(pix, axis=0)
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    fill = mask.sum() / ((y1 - y0) * (x1 - x0))
    top = mask[y0:y0 + (y1 - y0) // 2].sum() / mask.sum() if y1 - y0 >= 2 else 0.5
    kind = min(KINDS, key=lambda k: (fill - KINDS[k][0]) ** 2 + (top - KINDS[k][1]) ** 2)
    cy, cx = ys.mean() / h, xs.mean() / w
    if abs(cx - 0.5) < 0.1 and abs(cy - 0.5) < 0.1:
        pos = "center"
    else:
        pos = ("top" if cy < 0.5 else "bottom") + " " + ("left" if cx < 0.5 else "right")
    res.update(colour=nearest(fg), fg_rgb=[round(v) for v in fg], kind=kind, fill=round(float(fill), 3),
               top=round(float(top), 3), position=pos, centroid=[round(cx, 3), round(cy, 3)],
               size="large" if mask.sum() / (h * w) > 0.08 else "small")
    return res


# ---------------------------------------------------------------------- generation

def generate(args, item, path):
    cmd = [args.diffusiond, "generate", "--prompt", item["prompt"], "--seed", str(item["seed"]),
           "--steps", str(args.steps), "--cfg", str(args.cfg), "--threads", "1", "--out", path]
    if args.model:
        cmd += ["--model", args.model]
    if args.sampler:
        cmd += ["--sampler", args.sampler]
    if args.scheduler:
        cmd += ["--scheduler", args.scheduler]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--diffusiond", default="build/server/diffusiond")
    ap.add_argument("--model", help="diffusers folder (default: diffusiond's bundled model)")
    ap.add_argument("--n", type=int, default=240)
    ap.add_argument("--seed", type=int, default=7, help="prompt/noise-seed set (held out from training)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--cfg", type=float, default=5.0)
    ap.add_argument("--sampler")
    ap.add_argument("--scheduler")
    ap.add_argument("--jobs", type=int, default=1, help="diffusiond processes at once (1 thread each)")
    ap.add_argument("--threshold", type=float, default=60.0)
    ap.add_argument("--out", default="/tmp/diffusiond-eval")
    ap.add_argument("--images", help="score existing images: DIR with prompts.json and NNNN.png")
    args = ap.parse_args()

    if args.images:
        out = args.images
        with open(os.path.join(out, "prompts.json")) as f:
            items = json.load(f)
    else:
        out = args.out
        os.makedirs(out, exist_ok=True)
        items = make_prompts(args.n, args.seed)
        with open(os.path.join(out, "prompts.json"), "w") as f:
            json.dump(items, f, indent=1)
        t0 = time.time()
        with ThreadPoolExecutor(args.jobs) as ex:
            list(ex.map(lambda it: generate(args, it[1], os.path.join(out, f"{it[0]:04d}.png")),
                        enumerate(items)))
        print(f"generated {len(items)} images in {time.time() - t0:.1f} s", file=sys.stderr)

    rows, hits = [], {k: [0, 0] for k in ("colour", "background", "kind", "position", "size", "all3")}
    for i, it in enumerate(items):
        img = np.asarray(Image.open(os.path.join(out, f"{i:04d}.png")).convert("RGB"))
        got = analyse(img, args.threshold)
        ok = {}
        for k, v in it["expect"].items():
            ok[k] = got.get(k) == v
            hits[k][0] += ok[k]
            hits[k][1] += 1
        a3 = ok["colour"] and ok["background"] and ok["kind"]
        hits["all3"][0] += a3
        hits["all3"][1] += 1
        rows.append(dict(index=i, prompt=it["prompt"], seed=it["seed"],
                         **{f"want_{k}": v for k, v in it["expect"].items()},
                         **{f"got_{k}": got.get(k) for k in ("colour", "background", "kind", "position", "size")},
                         fill=got.get("fill"), top=got.get("top"), area=got["area"],
                         fg_rgb=got.get("fg_rgb"), bg_rgb=got["bg_rgb"], ok_all3=a3))
    keys = sorted({k for r in rows for k in r}, key=lambda k: list(rows[0]).index(k) if k in rows[0] else 99)
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    summary = {k: dict(correct=c, total=t, accuracy=round(c / t, 4) if t else None) for k, (c, t) in hits.items()}
    summary["settings"] = dict(n=len(items), seed=args.seed, steps=args.steps, cfg=args.cfg,
                               sampler=args.sampler, scheduler=args.scheduler, model=args.model,
                               threshold=args.threshold)
    goals = dict(colour=0.90, background=0.95, kind=0.80)
    summary["goals_met"] = all(summary[k]["accuracy"] >= g for k, g in goals.items())
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    # a contact sheet of the first 64 (a red frame marks a miss of colour/background/kind)
    sheet = np.zeros((8 * 68, 8 * 68, 3), np.uint8)
    for i in range(min(64, len(items))):
        img = np.asarray(Image.open(os.path.join(out, f"{i:04d}.png")).convert("RGB").resize((64, 64)))
        y, x = (i // 8) * 68, (i % 8) * 68
        sheet[y:y + 68, x:x + 68] = (0, 200, 0) if rows[i]["ok_all3"] else (255, 0, 0)
        sheet[y + 2:y + 66, x + 2:x + 66] = img
    Image.fromarray(sheet).resize((8 * 68 * 2, 8 * 68 * 2), Image.NEAREST).save(os.path.join(out, "sheet.png"))
    for k in ("colour", "background", "kind", "position", "size", "all3"):
        s = summary[k]
        print(f"{k:10s} {s['correct']:4d}/{s['total']:<4d} {100 * (s['accuracy'] or 0):6.1f}%"
              + (f"   (goal {100 * goals[k]:.0f}%)" if k in goals else ""))
    print(f"goals met: {summary['goals_met']}; details in {out}/summary.json, results.csv, sheet.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
