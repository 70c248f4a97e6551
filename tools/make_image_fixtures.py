#!/usr/bin/env python3
"""Make tests/fixtures/images/: small PNG/JPEG/WebP files and the pixels Pillow reads
from them, and Pillow's LANCZOS resizes, so tests/unit/test_image_decode.c checks
api/image_decode against the reference that AUTOMATIC1111's img2img runs on
(Image.open(...) then Image.resize(size, Image.LANCZOS)).  CI never runs this script;
its output is committed (about 60 KB).

Each X.png / X.jpg / X.webp has X.rgb next to it: width·height·3 bytes, rows top to
bottom, as Pillow decodes the file, with any alpha flattened onto white by
round(c·a/255 + 255·(1 − a/255)) (A1111's img2img_background_color, #ffffff).  The
sizes are in tests/unit/test_image_decode.c (and printed by this script).
resize_WxH.rgb: resize_src.png resized by Pillow to W×H with Image.LANCZOS.
huge.{png,jpg,webp}: headers that claim a huge image and carry no pixels (the limits
must refuse them before decoding).

Usage: python3 tools/make_image_fixtures.py
Without Pillow in the running Python it re-runs itself under the project's .venv when
that has Pillow, else under a throwaway venv in /tmp where it pip-installs pillow.
"""
import io
import math
import os
import random
import struct
import subprocess
import sys
import tempfile
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def reexec_with_pillow():
    """Runs this script again under a Python that has Pillow (never returns)."""
    venv_python = os.path.join(ROOT, ".venv", "bin", "python")
    if os.path.exists(venv_python) and subprocess.run(
            [venv_python, "-c", "import PIL"], capture_output=True).returncode == 0:
        python = venv_python
    else:
        venv = tempfile.mkdtemp(prefix="pillow-venv-")
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        python = os.path.join(venv, "bin", "python")
        subprocess.run([python, "-m", "pip", "install", "-q", "pillow"], check=True)
    os.execv(python, [python, os.path.abspath(__file__)] + sys.argv[1:])


try:
    import PIL
    from PIL import Image
except ImportError:
    reexec_with_pillow()

OUT = os.path.join(ROOT, "tests", "fixtures", "images")


def pattern(w, h, seed, channels=3):
    """Gradients, a sharp edge and noise: smooth parts and ones that ring under Lanczos."""
    rng = random.Random(seed)
    px = []
    for y in range(h):
        for x in range(w):
            v = []
            for c in range(channels):
                if channels in (2, 4) and c == channels - 1:
                    # alpha: every value from 0 to 255 somewhere, opaque and clear blocks
                    v.append((x * 37 + y * 11) % 256 if (x // 4 + y // 4) % 3 else
                             (255 if x % 2 else 0))
                    continue
                if c == 0:
                    s = 255 * x / max(1, w - 1)
                elif c == 1:
                    s = 255 * y / max(1, h - 1)
                else:
                    s = 128 + 110 * math.sin(x * 0.7 + c) * math.cos(y * 0.45)
                if (x - w // 2) * (y - h // 3) > 0 and c != 2:
                    s = 255 - s  # an edge through the middle
                s += rng.randint(-24, 24)
                v.append(max(0, min(255, int(round(s)))))
            px.append(tuple(v))
    return px


def image(mode, w, h, seed):
    im = Image.new(mode, (w, h))
    px = pattern(w, h, seed, len(mode))
    im.putdata([p[0] for p in px] if mode == "L" else px)
    return im


def flatten(im):
    """What the decoder must give: RGB, alpha over white by the exact formula."""
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        out = bytearray()
        px = rgba.tobytes()
        for i in range(0, len(px), 4):
            a = px[i + 3]
            for c in px[i:i + 3]:
                out.append((c * a + 255 * (255 - a) + 127) // 255)
        # A1111 itself uses Image.alpha_composite onto white; report how far that is.
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        ac = Image.alpha_composite(white, rgba).convert("RGB").tobytes()
        diff = max(abs(p - q) for p, q in zip(ac, out))
        print(f"    (alpha_composite onto white differs by at most {diff})")
        return bytes(out)
    return im.convert("RGB").tobytes()


def save(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def encode(im, fmt, **kw):
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def fixture(name, data):
    """Writes the file and what Pillow reads from it."""
    save(name, data)
    back = Image.open(io.BytesIO(data))
    back.load()
    print(f"{name}: {back.size[0]}x{back.size[1]} {back.mode}, {len(data)} bytes")
    save(os.path.splitext(name)[0] + ".rgb", flatten(back))


def png_chunk(kind, body):
    return (struct.pack(">I", len(body)) + kind + body +
            struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))


def png_16bit(w, h, samples, color_type):
    """A 16-bit PNG written by hand (Pillow writes no 16-bit RGB/RGBA)."""
    channels = {2: 3, 6: 4}[color_type]
    raw = bytearray()
    for y in range(h):
        raw.append(0)  # filter: none
        for x in range(w):
            for c in range(channels):
                raw += struct.pack(">H", samples(x, y, c))
    return (b"\x89PNG\r\n\x1a\n" +
            png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)) +
            png_chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + png_chunk(b"IEND", b""))


def png_fixtures():
    fixture("png_rgb.png", encode(image("RGB", 29, 17, 1), "PNG"))
    fixture("png_rgba.png", encode(image("RGBA", 23, 19, 2), "PNG"))
    fixture("png_gray.png", encode(image("L", 19, 13, 3), "PNG"))
    fixture("png_gray_alpha.png", encode(image("LA", 18, 11, 4), "PNG"))
    pal = image("RGB", 21, 15, 5).quantize(colors=16, dither=Image.Dither.NONE)
    fixture("png_palette.png", encode(pal, "PNG"))
    # tRNS: clear, half and opaque entries
    trns = bytes([0, 128, 255, 64] + [255] * 12)
    fixture("png_palette_trns.png", encode(pal, "PNG", transparency=trns))
    # gAMA 1.0 (libpng would convert it to sRGB; Pillow ignores it), after a tEXt chunk
    raw = image("RGB", 16, 9, 15).tobytes()
    rows = b"".join(b"\0" + raw[y * 48:(y + 1) * 48] for y in range(9))
    fixture("png_gamma.png", b"\x89PNG\r\n\x1a\n" +
            png_chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 9, 8, 2, 0, 0, 0)) +
            png_chunk(b"tEXt", b"Comment\0gamma 1.0") +
            png_chunk(b"gAMA", struct.pack(">I", 100000)) +
            png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b""))
    # 16-bit RGB: any values (Pillow keeps the high byte, libpng rounds v/257: ±1)
    rng = random.Random(6)
    vals = [[[rng.randrange(65536) for _ in range(3)] for _ in range(17)] for _ in range(11)]
    fixture("png_rgb16.png", png_16bit(17, 11, lambda x, y, c: vals[y][x][c], 2))
    # 16-bit RGBA whose samples are 8-bit values times 257 (every reading agrees exactly)
    px = pattern(15, 13, 7, 4)
    fixture("png_rgba16.png", png_16bit(15, 13, lambda x, y, c: 257 * px[y * 15 + x][c], 6))


def jpeg_fixtures():
    fixture("jpg_rgb.jpg", encode(image("RGB", 32, 24, 8), "JPEG", quality=90, subsampling=2))
    fixture("jpg_gray.jpg", encode(image("L", 24, 16, 9), "JPEG", quality=85))


def webp_fixtures():
    fixture("webp_lossless.webp", encode(image("RGB", 27, 19, 10), "WEBP", lossless=True))
    fixture("webp_alpha.webp",
            encode(image("RGBA", 25, 17, 11), "WEBP", lossless=True, exact=True))
    fixture("webp_lossy.webp", encode(image("RGB", 31, 21, 12), "WEBP", quality=80))


def resize_fixtures():
    src = image("RGB", 48, 40, 13)
    fixture("resize_src.png", encode(src, "PNG"))
    for w, h in ((17, 13), (64, 56), (61, 9), (5, 3)):
        save(f"resize_{w}x{h}.rgb", src.resize((w, h), Image.LANCZOS).tobytes())
        print(f"resize_{w}x{h}.rgb: resize_src.png (48x40) to {w}x{h}, LANCZOS")


def huge_fixtures():
    """Headers claiming 30000x20000 pixels (16000x12000 for WebP), no pixel data."""
    idat = png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
    save("huge.png", b"\x89PNG\r\n\x1a\n" +
         png_chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 20000, 8, 2, 0, 0, 0)) +
         idat + png_chunk(b"IEND", b""))
    jpg = bytearray(encode(image("RGB", 16, 16, 14), "JPEG", quality=50))
    sof = jpg.index(b"\xff\xc0")
    jpg[sof + 5:sof + 9] = struct.pack(">HH", 20000, 30000)  # height, width
    sos = jpg.index(b"\xff\xda")
    save("huge.jpg", bytes(jpg[:sos + 40]))  # the header, then the scan cut short
    bits = (16000 - 1) | ((12000 - 1) << 14)  # VP8L: 14-bit width−1, height−1, no alpha
    vp8l = b"\x2f" + struct.pack("<I", bits) + b"\0" * 16
    body = b"WEBP" + b"VP8L" + struct.pack("<I", len(vp8l)) + vp8l
    save("huge.webp", b"RIFF" + struct.pack("<I", len(body)) + body)
    print("huge.png (30000x20000), huge.jpg (30000x20000), huge.webp (16000x12000)")


def main():
    os.makedirs(OUT, exist_ok=True)
    print(f"Pillow {PIL.__version__} -> {os.path.normpath(OUT)}")
    png_fixtures()
    jpeg_fixtures()
    webp_fixtures()
    resize_fixtures()
    huge_fixtures()


if __name__ == "__main__":
    main()
