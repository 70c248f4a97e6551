"""Procedural captioned shapes for the bundled diffusiond model.

Every sample is a flat-coloured shape (circle, square, triangle) of a named colour,
size and position on a flat background of another named colour, with a caption such
as "a large red circle at the top left on a blue background" (or a shorter variant:
"a red circle on a blue background", "a red circle", ...).

Nothing is stored: `ShapeSampler(seed)` draws attributes and renders images on the fly
with numpy, deterministically from the seed.  The shapes are rendered at 4x and
box-filtered down, so their edges are anti-aliased.
"""
import numpy as np

# Colours far apart in RGB (every pair is >= ~110 apart in Euclidean distance).
COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (30, 60, 220),
    "yellow": (245, 220, 40),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
    "orange": (245, 140, 20),
    "purple": (140, 40, 180),
}
COLOUR_NAMES = list(COLOURS)
SHAPES = ["circle", "square", "triangle"]
SIZES = ["small", "large"]
# name -> centre as a fraction of the image side (x, y)
POSITIONS = {
    "center": (0.5, 0.5),
    "top left": (0.3, 0.3),
    "top right": (0.7, 0.3),
    "bottom left": (0.3, 0.7),
    "bottom right": (0.7, 0.7),
}
POSITION_NAMES = list(POSITIONS)
# half the shape's side (or the radius) as a fraction of the image side
SIZE_FRAC = {"small": 0.13, "large": 0.22}


def position_phrase(pos):
    return "in the center" if pos == "center" else f"at the {pos}"


def caption(attrs, variant):
    """Caption of a sample.  variant 0: everything; 1: no position; 2: no size;
    3: colour + shape + background; 4: no background; 5: colour + shape only."""
    shape, col, bg, size, pos = (attrs[k] for k in ("shape", "colour", "background", "size", "position"))
    art = "an" if col[0] in "aeiou" else "a"
    on = f"on an {bg} background" if bg[0] in "aeiou" else f"on a {bg} background"
    parts = {
        0: f"a {size} {col} {shape} {position_phrase(pos)} {on}",
        1: f"a {size} {col} {shape} {on}",
        2: f"{art} {col} {shape} {position_phrase(pos)} {on}",
        3: f"{art} {col} {shape} {on}",
        4: f"a {size} {col} {shape} {position_phrase(pos)}",
        5: f"{art} {col} {shape}",
    }
    return parts[variant]


# how often each caption variant is used in training (sums to 1)
VARIANT_P = np.array([0.35, 0.15, 0.15, 0.25, 0.05, 0.05])


def render(attrs, side=64, jitter=(0.0, 0.0, 1.0), ss=4):
    """RGB uint8 [side, side, 3].  jitter = (dx, dy, scale) in fractions of the side."""
    shape = attrs["shape"]
    fg = np.array(COLOURS[attrs["colour"]], np.float32)
    bg = np.array(COLOURS[attrs["background"]], np.float32)
    cx, cy = POSITIONS[attrs["position"]]
    cx, cy = (cx + jitter[0]) * side, (cy + jitter[1]) * side
    r = SIZE_FRAC[attrs["size"]] * jitter[2] * side
    n = side * ss
    c = (np.arange(n, dtype=np.float32) + 0.5) / ss
    x, y = np.meshgrid(c, c)
    if shape == "circle":
        m = (x - cx) ** 2 + (y - cy) ** 2 <= r * r
    elif shape == "square":
        s = r * 0.9  # a square of the same area as the circle looks the same size
        m = (np.abs(x - cx) <= s) & (np.abs(y - cy) <= s)
    elif shape == "triangle":
        # upright isosceles: apex at the top, base 2r' wide, height 2r'
        s = r * 1.1
        top, bot = cy - s, cy + s
        half = (y - top) / (2 * s) * s  # half-width grows linearly from the apex
        m = (y >= top) & (y <= bot) & (np.abs(x - cx) <= half)
    else:
        raise ValueError(shape)
    cov = m.reshape(side, ss, side, ss).mean(axis=(1, 3))[..., None]
    img = bg * (1 - cov) + fg * cov
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


class ShapeSampler:
    """Deterministic stream of (image uint8 HWC, attrs, caption)."""

    def __init__(self, seed, side=64):
        self.rng = np.random.default_rng(seed)
        self.side = side

    def attrs(self):
        rng = self.rng
        col = COLOUR_NAMES[rng.integers(len(COLOUR_NAMES))]
        bg = col
        while bg == col:
            bg = COLOUR_NAMES[rng.integers(len(COLOUR_NAMES))]
        return dict(shape=SHAPES[rng.integers(len(SHAPES))], colour=col, background=bg,
                    size=SIZES[rng.integers(len(SIZES))],
                    position=POSITION_NAMES[rng.integers(len(POSITION_NAMES))])

    def jitter(self):
        rng = self.rng
        return (float(rng.uniform(-0.03, 0.03)), float(rng.uniform(-0.03, 0.03)),
                float(rng.uniform(0.9, 1.1)))

    def sample(self):
        a = self.attrs()
        img = render(a, self.side, self.jitter())
        return img, a

    def caption(self, attrs):
        return caption(attrs, int(self.rng.choice(len(VARIANT_P), p=VARIANT_P)))

    def batch(self, n):
        imgs, attrs = zip(*(self.sample() for _ in range(n)))
        return np.stack(imgs), list(attrs)


if __name__ == "__main__":  # a contact sheet, to look at
    import sys
    from PIL import Image
    s = ShapeSampler(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    imgs, attrs = s.batch(32)
    sheet = imgs.reshape(4, 8, 64, 64, 3).transpose(0, 2, 1, 3, 4).reshape(256, 512, 3)
    Image.fromarray(sheet).resize((1024, 512), Image.NEAREST).save("/tmp/shapes_sheet.png")
    for a in attrs[:8]:
        print(caption(a, 0))
