#!/usr/bin/env python3
"""Make tests/fixtures/multipart/: multipart/form-data bodies exactly as the openai
Python package (through its httpx) writes them for POST /v1/images/edits, for
tests/unit/test_multipart.c (api/multipart).  CI never runs this script; its output is
committed (a few KB).

Each X.body is a request body, X.content-type its Content-Type header (no newline).
image.bin is the uploaded "image": a PNG signature (it has CR LF), every byte value,
the boundary's text after a CRLF but cut short, after other bytes, after a bare LF,
and "--" at both ends of lines.
  openai_edit       images.edit(image=("a.png", image.bin, "image/png"), prompt, n, size)
  openai_edit_multi images.edit(image=[two files], prompt, model): the files as image[]
  httpx_escapes     httpx alone: a field named we"ird\\name and a file x"y\\z.png
                    (httpx writes " as %22 and \\ as \\\\ in names)
The boundaries are fixed (a Content-Type with a boundary passed to the client is kept)
so that the output is the same on every run.

Usage: python3 tools/make_multipart_fixtures.py
Needs the openai package and its httpx (the project's .venv has them: scripts/pyenv.sh);
without them in the running Python it re-runs itself under <root>/.venv/bin/python.
"""
import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "multipart")
BOUNDARY = "7d1e0f5c9a2b48e3b6c4a18f02d95e6b"  # the shape httpx gives: 32 hex digits

try:
    import openai
    try:
        import httpx2 as httpx  # what this openai build imports
    except ImportError:
        import httpx
except ImportError:
    venv_python = os.path.join(ROOT, ".venv", "bin", "python")
    if os.path.realpath(sys.executable) == os.path.realpath(venv_python):
        sys.exit("make_multipart_fixtures: the .venv has no openai/httpx (scripts/pyenv.sh)")
    sys.exit(subprocess.call([venv_python, os.path.abspath(__file__)] + sys.argv[1:]))


def image_bytes():
    b = BOUNDARY.encode()
    # never CR LF "--" boundary: that would end the part
    return (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) + b"\r\n--" + b[:-1] + b"\r\n"
            + b"x--" + b + b"--" + b"\n--" + b + b"\r\n-")


def capture(call):
    """Runs call(client) against a mock transport; returns (content type, body)."""
    got = {}

    def handler(request):
        got["ct"] = request.headers["content-type"]
        got["body"] = request.read()
        return httpx.Response(200, json={"created": 1, "data": [{"b64_json": "AA=="}]})

    client = openai.OpenAI(api_key="sk-test", base_url="http://localhost/v1",
                           http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    call(client)
    return got["ct"], got["body"]


def write(name, content_type, body):
    with open(os.path.join(OUT, name + ".body"), "wb") as f:
        f.write(body)
    with open(os.path.join(OUT, name + ".content-type"), "w") as f:
        f.write(content_type)
    print(f"{name}: {len(body)} bytes, {content_type}")


def main():
    os.makedirs(OUT, exist_ok=True)
    img = image_bytes()
    with open(os.path.join(OUT, "image.bin"), "wb") as f:
        f.write(img)
    ct = f"multipart/form-data; boundary={BOUNDARY}"
    write("openai_edit", *capture(lambda c: c.images.edit(
        image=("a.png", img, "image/png"), prompt="a red fox", n=2, size="256x256",
        extra_headers={"Content-Type": ct})))
    write("openai_edit_multi", *capture(lambda c: c.images.edit(
        image=[("a.png", img, "image/png"), ("b.webp", b"RIFF", "image/webp")],
        prompt="two", model="gpt-image-1", extra_headers={"Content-Type": ct})))
    req = httpx.Request("POST", "http://localhost/v1/images/edits", headers={"Content-Type": ct},
                        data={'we"ird\\name': "v"},
                        files={"image": ('x"y\\z.png', b"\x89PNG", "image/png")})
    write("httpx_escapes", req.headers["content-type"], req.read())


if __name__ == "__main__":
    main()
