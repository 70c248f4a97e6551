"""tests/http/test_clients.py — third-party clients against the live server:
  * the official `openai` package: client.images.generate(...) → decodable images;
    its errors (AuthenticationError, BadRequestError, NotFoundError) on ours;
  * the `webuiapi` package (AUTOMATIC1111's API client) in test_a1111.py;
  * schemathesis with api/openapi.yaml: zero failures (every check), the OpenAI and the
    A1111 routes;
  * openapi-spec-validator on api/openapi.yaml.

The schemathesis run uses a server with small limits (sizes 64–128, n ≤ 2, steps ≤ 4,
prompts ≤ 300 characters) so that it finishes in a few minutes; the spec it is given
is api/openapi.yaml with those limits written in (the spec's bounds are the default
settings, marked x-diffusiond-setting), nothing else changed.

Run: .venv/bin/python -m unittest -v tests/http/test_clients.py  (DIFFUSIOND_BIN set)."""
import base64
import io
import os
import subprocess
import sys
import tempfile
import unittest

import openai
import yaml
from PIL import Image

import harness
from harness import Server, image_kind

SPEC = os.path.join(harness.ROOT, "api", "openapi.yaml")
HERE = os.path.dirname(os.path.abspath(__file__))
VENV_BIN = os.path.dirname(sys.executable)
SCHEMATHESIS_EXAMPLES = int(os.environ.get("DIFFUSIOND_SCHEMATHESIS_EXAMPLES", "60"))


def side_regex(lo, hi):
    sides = "|".join(str(v) for v in range(lo, hi + 1) if v % 8 == 0)
    return f"^(?:auto|(?:{sides})x(?:{sides}))$"


def small_png_b64():
    """A 64×64 PNG (gradients), base64."""
    img = Image.new("RGB", (64, 64))
    img.putdata([(x * 4, y * 4, (x + y) * 2) for y in range(64) for x in range(64)])
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def spec_with_limits(min_side, max_side, max_n, max_steps, max_prompt, max_clip_skip):
    """api/openapi.yaml with the server's settings in place of the defaults."""
    with open(SPEC) as f:
        spec = yaml.safe_load(f)
    props = spec["components"]["schemas"]["ImageGenerationRequest"]["properties"]
    assert props["size"]["x-diffusiond-setting"].startswith("--min-side")
    props["size"]["pattern"] = side_regex(min_side, max_side)
    props["n"]["maximum"] = max_n
    props["steps"]["maximum"] = max_steps
    props["prompt"]["maxLength"] = max_prompt
    props["negative_prompt"]["maxLength"] = max_prompt
    props["clip_skip"]["maximum"] = max_clip_skip  # the model's: text encoder layers − 1
    t2i = spec["components"]["schemas"]["Txt2ImgRequest"]
    tp = t2i["properties"]
    for side, hi in (("width", max_side), ("height", max_side)):
        assert tp[side]["x-diffusiond-setting"].startswith("--min-side")
        tp[side]["minimum"], tp[side]["maximum"] = min_side, hi
    tp["batch_size"]["maximum"] = tp["n_iter"]["maximum"] = max_n
    tp["steps"]["maximum"] = max_steps
    tp["prompt"]["maxLength"] = tp["negative_prompt"]["maxLength"] = max_prompt
    tp["override_settings"]["properties"]["CLIP_stop_at_last_layers"]["maximum"] = \
        max_clip_skip + 1
    # img2img: what the spec can only describe — the image decodes (here: one 64×64 PNG,
    # so that every body the schema allows must be accepted) and int(steps ×
    # denoising_strength) ≥ 1, spelled out for steps 1 … max_steps (absent: the model's
    # default, capped at max_steps) and strength absent = 0.75
    i2i = spec["components"]["schemas"]["Img2ImgRequest"]["allOf"][1]
    i2i["properties"]["init_images"]["items"] = {"type": "string", "enum": [small_png_b64()]}
    # inpainting: the mask too is that PNG (or null); mask_blur_x / _y must equal
    # mask_blur beside it, a cross-field rule JSON Schema cannot state over their range,
    # so they are left out here (test_a1111 covers them, and test_a1111.py)
    i2i["properties"]["mask"]["enum"] = [small_png_b64(), None]
    del i2i["properties"]["mask_blur_x"], i2i["properties"]["mask_blur_y"]
    given = {"required": ["steps"], "properties": {"steps": {"type": "integer"}}}
    i2i["allOf"] = [{"if": {"not": given},
                     "then": {"properties": {"denoising_strength": {"minimum": 1 / max_steps}}}}]
    for s in range(1, max_steps + 1):
        need = {"properties": {"denoising_strength": {"minimum": 1 / s}}}
        if 0.75 * s < 1:  # the default strength runs no step: it must be given
            need["required"] = ["denoising_strength"]
            need["properties"]["denoising_strength"]["type"] = "number"
        i2i["allOf"].append({"if": {"required": ["steps"], "properties": {"steps": {"const": s}}},
                             "then": need})
    # The edits route's form carries its image as binary, which schemathesis fills
    # with random bytes: a valid body cannot be narrowed to decodable images, so that
    # operation is left to TestOpenAIClient (the openai client's uploads), the unit
    # tests (test_openai_edits, test_multipart) and tests/fuzz/fuzz_multipart.c.
    del spec["paths"]["/v1/images/edits"]
    # batch_size × n_iter ≤ max_n, for this max_n: replaces the default's three rules
    rules = [r for r in t2i["allOf"] if "batch_size" not in r["if"].get("properties", {})]
    assert len(rules) == len(t2i["allOf"]) - 3, "the spec's batch_size × n_iter rules moved"
    t2i["allOf"] = rules + [
        {"if": {"required": ["batch_size"],
                "properties": {"batch_size": {"type": "integer", "minimum": b, "maximum": b}}},
         "then": {"properties": {"n_iter": {"maximum": max_n // b}}}}
        for b in range(2, max_n + 1)]
    return spec


class TestSpec(unittest.TestCase):
    def test_openapi_spec_valid(self):
        p = subprocess.run([os.path.join(VENV_BIN, "openapi-spec-validator"), SPEC],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_size_regex_is_the_default_bounds(self):
        import re
        with open(SPEC) as f:
            spec = yaml.safe_load(f)
        pat = re.compile(spec["components"]["schemas"]["ImageGenerationRequest"]
                         ["properties"]["size"]["pattern"])
        for w in range(0, 2100):
            for s in (f"{w}x64", f"64x{w}"):
                want = 64 <= w <= 2048 and w % 8 == 0
                self.assertEqual(bool(pat.fullmatch(s)), want, s)
        self.assertTrue(pat.fullmatch("auto"))

    def test_txt2img_product_rules_are_the_default_max_n(self):
        import jsonschema
        with open(SPEC) as f:
            spec = yaml.safe_load(f)
        schema = spec["components"]["schemas"]["Txt2ImgRequest"]
        for b in range(1, 9):
            for n in range(1, 9):
                ok = jsonschema.Draft202012Validator(schema).is_valid(
                    {"batch_size": b, "n_iter": n})
                self.assertEqual(ok, b * n <= 8, (b, n))


class TestOpenAIClient(harness.ServerCase):
    KEY = "sk-test-key"
    ARGS = ["--queue-capacity", "16"]
    ENV = {"DIFFUSIOND_API_KEYS": KEY}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.client = openai.OpenAI(base_url=cls.server.base_url + "/v1", api_key=cls.KEY,
                                   max_retries=0, timeout=120)

    def test_generate_b64_json(self):
        res = self.client.images.generate(model=harness.TINY_NAME, prompt="a small red house",
                                          size="64x64", response_format="b64_json", n=2,
                                          extra_body={"steps": 2, "seed": 11})
        self.assertEqual(len(res.data), 2)
        for d in res.data:
            data = base64.b64decode(d.b64_json)
            self.assertEqual(image_kind(data), "png")
            img = Image.open(io.BytesIO(data))
            img.load()
            self.assertEqual(img.size, (64, 64))
        self.assertIsInstance(res.created, int)
        extra = res.model_extra or {}
        self.assertIn("metrics", extra)
        self.assertEqual(extra["metrics"]["seeds"], [11, 12])

    @staticmethod
    def start_png(w=90, h=80):
        img = Image.new("RGB", (w, h))
        img.putdata([((x * 5) % 256, (y * 3) % 256, (x ^ y) % 256) for y in range(h)
                     for x in range(w)])
        buf = io.BytesIO()
        img.save(buf, "PNG")
        return buf.getvalue()

    def test_edit_through_the_client(self):
        """images.edit (a multipart upload): img2img, int(steps × strength) U-Net calls,
        the image's size rounded down to 8, n images with seeds seed + i."""
        res = self.client.images.edit(model=harness.TINY_NAME, image=("start.png",
                                      self.start_png(), "image/png"), prompt="a small red house",
                                      n=2, response_format="b64_json",
                                      extra_body={"steps": 6, "seed": 3, "strength": 0.5})
        self.assertEqual(len(res.data), 2)
        for d in res.data:
            img = Image.open(io.BytesIO(base64.b64decode(d.b64_json)))
            img.load()
            self.assertEqual(img.size, (88, 80))
            self.assertIn("Denoising strength: 0.5", img.info.get("parameters", ""))
        metrics = (res.model_extra or {})["metrics"]
        self.assertEqual(metrics["seeds"], [3, 4])
        self.assertEqual(metrics["batch_sizes"], [4, 4, 4])  # int(6 × 0.5) steps, 2 × CFG rows

    def test_edit_same_pixels_as_a1111_img2img(self):
        """One request path: the edits route and A1111's img2img give the same image."""
        png = self.start_png()
        res = self.client.images.edit(model=harness.TINY_NAME, image=("s.png", png, "image/png"),
                                      prompt="a lighthouse", size="64x72",
                                      extra_body={"steps": 4, "seed": 21, "strength": 0.75,
                                                  "guidance_scale": 6.0, "sampler": "euler"})
        a = self.server.request("POST", "/sdapi/v1/img2img", {
            "init_images": [base64.b64encode(png).decode()], "prompt": "a lighthouse",
            "width": 64, "height": 72, "steps": 4, "seed": 21, "denoising_strength": 0.75,
            "cfg_scale": 6.0, "sampler_name": "Euler"},
            headers={"Authorization": f"Bearer {self.KEY}"})
        self.assertEqual(a.status, 200, a.body[:300])
        mine = Image.open(io.BytesIO(base64.b64decode(res.data[0].b64_json))).convert("RGB")
        theirs = Image.open(io.BytesIO(base64.b64decode(a.json()["images"][0]))).convert("RGB")
        self.assertEqual(mine.tobytes(), theirs.tobytes())

    def test_edit_with_a_mask(self):
        """images.edit with a mask (OpenAI's convention: its transparent pixels are edited):
        the opaque part of the mask comes back exactly as the start image (the overlay),
        the transparent part is repainted; the strength's default is 1 with a mask, so all
        the steps run.  An image with transparent pixels and no mask is its own mask."""
        start = Image.open(io.BytesIO(self.start_png(88, 80))).convert("RGB")
        mask = Image.new("RGBA", (88, 80), (0, 0, 0, 255))
        mask.paste((0, 0, 0, 0), (44, 0, 88, 80))  # edit the right half
        buf = io.BytesIO()
        mask.save(buf, "PNG")
        res = self.client.images.edit(model=harness.TINY_NAME, prompt="a red door",
                                      image=("s.png", self.start_png(88, 80), "image/png"),
                                      mask=("m.png", buf.getvalue(), "image/png"),
                                      response_format="b64_json",
                                      extra_body={"steps": 4, "seed": 8})
        out = Image.open(io.BytesIO(base64.b64decode(res.data[0].b64_json))).convert("RGB")
        self.assertEqual(out.size, (88, 80))
        self.assertEqual(out.crop((0, 0, 44, 80)).tobytes(), start.crop((0, 0, 44, 80)).tobytes())
        right = start.crop((44, 0, 88, 80)).tobytes()
        self.assertNotEqual(out.crop((44, 0, 88, 80)).tobytes(), right)
        self.assertEqual((res.model_extra or {})["metrics"]["batch_sizes"], [2, 2, 2, 2])
        # the image's own alpha as the mask: the same request, the same pixels
        rgba = start.convert("RGBA")
        rgba.putalpha(mask.getchannel("A"))
        own = io.BytesIO()
        rgba.save(own, "PNG")
        res2 = self.client.images.edit(model=harness.TINY_NAME, prompt="a red door",
                                       image=("s.png", own.getvalue(), "image/png"),
                                       response_format="b64_json",
                                       extra_body={"steps": 4, "seed": 8})
        out2 = Image.open(io.BytesIO(base64.b64decode(res2.data[0].b64_json))).convert("RGB")
        self.assertEqual(out2.crop((0, 0, 44, 80)).tobytes(),
                         start.crop((0, 0, 44, 80)).tobytes())
        self.assertNotEqual(out2.crop((44, 0, 88, 80)).tobytes(), right)

    def test_edit_errors(self):
        with self.assertRaises(openai.BadRequestError) as cm:
            self.client.images.edit(image=("m.png", self.start_png(), "image/png"),
                                    mask=("m.png", self.start_png(), "image/png"), prompt="x")
        self.assertEqual(cm.exception.body.get("param"), "mask")  # no alpha channel
        self.assertIn("no alpha channel", cm.exception.body.get("message"))
        small = io.BytesIO()
        Image.new("RGBA", (16, 16)).save(small, "PNG")
        with self.assertRaises(openai.BadRequestError) as cm:
            self.client.images.edit(image=("m.png", self.start_png(), "image/png"),
                                    mask=("m.png", small.getvalue(), "image/png"), prompt="x")
        self.assertEqual(cm.exception.body.get("param"), "mask")  # not the image's size
        with self.assertRaises(openai.BadRequestError) as cm:
            self.client.images.edit(image=("x.png", b"not an image", "image/png"), prompt="x")
        self.assertEqual(cm.exception.body.get("param"), "image")
        with self.assertRaises(openai.BadRequestError) as cm:
            self.client.images.edit(image=("s.png", self.start_png(), "image/png"), prompt="x",
                                    extra_body={"strength": 0.1, "steps": 4})
        self.assertEqual(cm.exception.body.get("param"), "strength")
        # a JSON body is not what this route takes
        r = self.server.request("POST", "/v1/images/edits", {"prompt": "x"},
                                headers={"Authorization": f"Bearer {self.KEY}"})
        self.assertEqual(r.status, 415, r.body[:300])

    def test_generate_jpeg_and_url(self):
        res = self.client.images.generate(model=harness.TINY_NAME, prompt="a boat",
                                          size="64x64", response_format="b64_json",
                                          output_format="jpeg", output_compression=70,
                                          extra_body={"steps": 2})
        self.assertEqual(image_kind(base64.b64decode(res.data[0].b64_json)), "jpeg")
        res = self.client.images.generate(model=harness.TINY_NAME, prompt="a boat",
                                          size="64x64", response_format="url",
                                          extra_body={"steps": 2})
        url = res.data[0].url
        r = self.server.request("GET", url[url.index("/v1/images/"):])
        self.assertEqual(r.status, 200)
        self.assertEqual(image_kind(r.body), "png")

    def test_models_list(self):
        ids = [m.id for m in self.client.models.list()]
        self.assertEqual(ids, [harness.TINY_NAME])

    def test_errors_map_to_sdk_exceptions(self):
        bad_key = openai.OpenAI(base_url=self.server.base_url + "/v1", api_key="wrong",
                                max_retries=0)
        with self.assertRaises(openai.AuthenticationError):
            bad_key.images.generate(prompt="x", size="64x64", extra_body={"steps": 1})
        with self.assertRaises(openai.BadRequestError) as cm:
            self.client.images.generate(prompt="x", size="65x64", extra_body={"steps": 1})
        self.assertEqual(cm.exception.body.get("param"), "size")
        with self.assertRaises(openai.NotFoundError) as cm:
            self.client.images.generate(model="dall-e-3", prompt="x", size="64x64",
                                        extra_body={"steps": 1})
        self.assertEqual(cm.exception.body.get("code"), "model_not_found")


class TestSchemathesis(unittest.TestCase):
    def test_schemathesis_zero_failures(self):
        min_side, max_side, max_n, max_steps, max_prompt = 64, 128, 2, 4, 300
        server = Server(["--min-side", str(min_side), "--max-width", str(max_side),
                         "--max-height", str(max_side), "--max-n", str(max_n),
                         "--max-steps", str(max_steps), "--max-prompt-chars", str(max_prompt),
                         "--queue-capacity", "64", "--cors-origins", "http://localhost:3000"])
        tmp = tempfile.mkdtemp(prefix="diffusiond-schemathesis-")
        try:
            spec = spec_with_limits(min_side, max_side, max_n, max_steps, max_prompt, 1)
            spec_path = os.path.join(tmp, "openapi.yaml")
            with open(spec_path, "w") as f:
                yaml.safe_dump(spec, f, sort_keys=False)
            cmd = [sys.executable, os.path.join(HERE, "run_schemathesis.py"), "run", spec_path,
                   "--url", server.base_url, "--checks", "all",
                   "--max-examples", str(SCHEMATHESIS_EXAMPLES), "--seed", "20261128",
                   "--workers", "2", "--request-timeout", "120",
                   "--generation-database", "none", "--generation-allow-x00", "false",
                   "--generation-codec", "utf-8", "--suppress-health-check", "all",
                   "--no-color", "--output-truncate", "false", "--continue-on-failure"]
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=tmp)
            out = p.stdout + p.stderr
            samples = server.metrics()
            def by_code(route):
                return {dict(ls).get("code"): v for (n, ls), v in samples.items()
                        if n == "diffusiond_http_requests_total"
                        and dict(ls).get("route") == route}
            codes = by_code("/v1/images/generations")
            t2i_codes = by_code("/sdapi/v1/txt2img")
            i2i_codes = by_code("/sdapi/v1/img2img")
            print(f"\nschemathesis: generation answers by code {codes}; txt2img {t2i_codes}; "
                  f"img2img {i2i_codes}", file=sys.stderr)
            summary = out[out.rfind("SUMMARY"):] if "SUMMARY" in out else out[-3000:]
            print(summary, file=sys.stderr)
            self.assertEqual(p.returncode, 0, f"schemathesis failed:\n{out[-12000:]}")
            self.assertNotIn("FAILURES", out)
            # The run reached real generations on every generating route, not only
            # rejections.  (How many of an operation's cases are valid shifts with the
            # whole spec — hypothesis' draws under two workers: with the same seed the
            # OpenAI route's 200s were 45 before img2img's rules above, 17 with them.)
            for route, got in (("generations", codes), ("txt2img", t2i_codes),
                               ("img2img", i2i_codes)):
                self.assertGreaterEqual(got.get("200", 0), 10, (route, got))
                self.assertGreaterEqual(got.get("400", 0) + got.get("422", 0), 20, (route, got))
        finally:
            code = server.stop()
            log = server.log()
            server.close()
            subprocess.run(["rm", "-rf", tmp])
        self.assertEqual(code, 0, log[-3000:])


if __name__ == "__main__":
    unittest.main()
