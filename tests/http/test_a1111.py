"""tests/http/test_a1111.py — AUTOMATIC1111's API (/sdapi/v1) against the live server,
through the `webuiapi` package (the A1111 client people script with) and raw HTTP:
  * the lists (sd-models, samplers, schedulers, options) and every listed sampler and
    scheduler usable in txt2img;
  * txt2img: images of the asked size and count (batch_size × n_iter), info's seeds and
    infotexts equal to each PNG's "parameters" chunk, a random seed that reproduces;
  * the same request on both routes gives the same pixels (one request path);
  * img2img (webuiapi's img2img and raw JSON): the image's size by default, int(steps ×
    denoising_strength) U-Net calls, denoising strength in info, parameters and the
    PNG's text, the same pixels for the same request, pixels that depend on the image;
    its errors naming the field;
  * inpainting (webuiapi's img2img with mask_image, fills 0-2, invert): the pixels the
    blurred mask keeps come back exactly as the start image, the masked area repainted;
  * POST options choosing the model; progress while a job runs and when idle;
  * errors in A1111's shape: 422 naming the field, 404 for an unknown model, 405, 415,
    401 with auth on; the metrics' route labels.

Run: .venv/bin/python -m unittest -v tests/http/test_a1111.py  (DIFFUSIOND_BIN set)."""
import base64
import io
import json
import threading
import time
import unittest

import webuiapi
from PIL import Image, ImageFilter

import harness

TXT2IMG = "/sdapi/v1/txt2img"


def png_pixels(data):
    img = Image.open(io.BytesIO(data))
    return img.size, img.convert("RGB").tobytes(), img.info.get("parameters")


def assert_a1111_error(tc, r, status, param=None):
    tc.assertEqual(r.status, status, r.body[:400])
    body = r.json()
    tc.assertEqual(set(body), {"error", "detail", "body", "errors", "param", "code"}, body)
    tc.assertTrue(body["detail"])
    tc.assertEqual(body["detail"], body["errors"])
    tc.assertEqual(body["param"], param, body)
    if param:
        tc.assertTrue(body["detail"].startswith(param + ":"), body)
    tc.assertTrue(r.header("X-Request-Id"))
    return body


class TestWebuiapi(harness.ServerCase):
    ARGS = ["--max-steps", "150", "--max-n", "8", "--max-width", "256", "--max-height", "256"]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.api = webuiapi.WebUIApi(host="127.0.0.1", port=cls.server.port)

    def test_lists(self):
        self.assertEqual(self.api.util_get_model_names(), [harness.TINY_NAME])
        self.assertEqual(self.api.util_get_current_model(), harness.TINY_NAME)
        self.assertEqual(set(self.api.util_get_sampler_names()),
                         {"Euler", "Euler a", "DDIM", "DPM++ 2M", "DDPM", "LCM"})
        self.assertEqual(set(self.api.util_get_scheduler_names()),
                         {"automatic", "karras", "uniform", "sgm_uniform", "leading"})

    def test_every_listed_sampler_and_scheduler_runs(self):
        for name in self.api.util_get_sampler_names():
            r = self.api.txt2img(prompt="a tree", seed=3, steps=2, sampler_name=name,
                                 width=64, height=64)
            self.assertEqual(len(r.images), 1, name)
            self.assertEqual(r.info["sampler_name"], name)
        for sched in self.api.util_get_scheduler_names():
            r = self.api.txt2img(prompt="a tree", seed=3, steps=2, sampler_name="Euler",
                                 scheduler=sched, width=64, height=64)
            self.assertEqual(len(r.images), 1, sched)
            self.assertEqual(r.parameters["scheduler"], sched)

    def test_txt2img_batches_seeds_and_infotexts(self):
        r = self.api.txt2img(prompt="a red boat", negative_prompt="fog", seed=7, steps=3,
                             cfg_scale=5, width=64, height=96, batch_size=2, n_iter=2,
                             sampler_name="DPM++ 2M", scheduler="karras")
        self.assertEqual(len(r.images), 4)
        self.assertEqual(r.info["all_seeds"], [7, 8, 9, 10])
        self.assertEqual(r.info["sampler_name"], "DPM++ 2M Karras")
        self.assertEqual((r.info["width"], r.info["height"]), (64, 96))
        raw = r.json["images"]
        for i, b64 in enumerate(raw):
            size, _, text = png_pixels(base64.b64decode(b64))
            self.assertEqual(size, (64, 96))
            self.assertEqual(text, r.info["infotexts"][i])
            self.assertIn(f"Seed: {7 + i},", text)
            self.assertIn("Negative prompt: fog\nSteps: 3, Sampler: DPM++ 2M Karras", text)
        self.assertEqual(r.parameters["seed"], 7)
        self.assertEqual(r.parameters["batch_size"], 2)
        self.assertEqual(r.parameters["n_iter"], 2)
        self.assertEqual(len(r.json["metrics"]["seeds"]), 4)

    def test_same_pixels_as_the_openai_route(self):
        common = {"prompt": "a lighthouse", "negative_prompt": "dark", "seed": 1234,
                  "steps": 4}
        a = self.server.request("POST", TXT2IMG, dict(
            common, cfg_scale=6.0, width=72, height=64, sampler_name="Euler a"))
        self.assertEqual(a.status, 200, a.body[:300])
        o = self.server.request("POST", "/v1/images/generations", dict(
            common, guidance_scale=6.0, size="72x64", sampler="euler_a", model=harness.TINY_NAME))
        self.assertEqual(o.status, 200, o.body[:300])
        pa = png_pixels(base64.b64decode(a.json()["images"][0]))
        po = png_pixels(base64.b64decode(o.json()["data"][0]["b64_json"]))
        self.assertEqual(pa[0], (72, 64))
        self.assertEqual(pa[:2], po[:2], "the two routes drew different pixels")
        self.assertEqual(pa[2], po[2], "the PNG parameters differ")

    def test_random_seed_is_reported_and_reproduces(self):
        r1 = self.api.txt2img(prompt="a cat", seed=-1, steps=2, width=64, height=64)
        seed = r1.info["seed"]
        self.assertGreaterEqual(seed, 0)
        r2 = self.api.txt2img(prompt="a cat", seed=seed, steps=2, width=64, height=64)
        self.assertEqual(r1.images[0].tobytes(), r2.images[0].tobytes())

    def test_send_images_false_and_ignored_overrides(self):
        r = self.server.request("POST", TXT2IMG, {
            "prompt": "x", "steps": 2, "send_images": False,
            "override_settings": {"sd_vae": "Automatic",
                                  "sd_model_checkpoint": harness.TINY_NAME}})
        self.assertEqual(r.status, 200, r.body[:300])
        body = r.json()
        self.assertEqual(body["images"], [])
        self.assertEqual(len(json.loads(body["info"])["all_seeds"]), 1)
        self.assertEqual(body["warnings"],
                         ["override_settings.sd_vae: not a setting of this server; ignored"])

    def test_options_choose_the_model(self):
        self.api.util_set_model(harness.TINY_NAME)
        self.assertEqual(self.api.get_options()["sd_model_checkpoint"], harness.TINY_NAME)
        r = self.server.request("POST", "/sdapi/v1/options", {"sd_model_checkpoint": "sd9"})
        body = assert_a1111_error(self, r, 404, "sd_model_checkpoint")
        self.assertEqual(body["code"], "model_not_found")
        r = self.server.request("POST", "/sdapi/v1/options", {"samples_format": "jpg"})
        self.assertEqual((r.status, r.body), (200, b"null"))

    def test_errors_name_the_field(self):
        cases = [({"steps": 0}, "steps"), ({"enable_hr": True}, "enable_hr"),
                 ({"width": 100}, "width"), ({"cfg_scale": "7"}, "cfg_scale"),
                 ({"batch_size": 4, "n_iter": 3}, "batch_size"),
                 ({"sampler_name": "Heun"}, "sampler_name"),
                 ({"alwayson_scripts": {"controlnet": {"args": []}}}, "alwayson_scripts"),
                 ({"override_settings": {"CLIP_stop_at_last_layers": 5}},
                  "override_settings.CLIP_stop_at_last_layers")]
        for body, param in cases:
            with self.subTest(body=body):
                assert_a1111_error(self, self.server.request("POST", TXT2IMG, body), 422, param)
        r = self.server.request("POST", TXT2IMG,
                                {"override_settings": {"sd_model_checkpoint": "nope"}})
        assert_a1111_error(self, r, 404, "override_settings.sd_model_checkpoint")
        assert_a1111_error(self, self.server.request("POST", TXT2IMG, b"{", headers={
            "Content-Type": "application/json"}), 422, None)
        # not JSON, with bytes that are not UTF-8 quoted in jansson's message (found by
        # tests/fuzz/fuzz_a1111.c: the error body could not be written)
        assert_a1111_error(self, self.server.request(
            "POST", TXT2IMG, b'"\\\xe7\xa3\xa3\xa3\xa3\xa3\xdd\xff',
            headers={"Content-Type": "application/json"}), 422, None)
        r = self.server.request("POST", TXT2IMG, b"prompt=x",
                                headers={"Content-Type": "text/plain"})
        assert_a1111_error(self, r, 415)
        r = self.server.request("DELETE", "/sdapi/v1/samplers")
        assert_a1111_error(self, r, 405)
        self.assertEqual(r.header("Allow"), "GET, HEAD, OPTIONS")
        # the OpenAI route keeps its own shape
        r = self.server.request("POST", "/v1/images/generations", {"prompt": "x", "steps": 0})
        self.assertEqual(r.status, 400)
        self.assertEqual(set(r.json()), {"error"})

    def test_progress_while_a_job_runs(self):
        idle = self.api.get_progress()
        self.assertEqual((idle["progress"], idle["state"]["job_count"]), (0.0, 0))
        result = {}

        def run():
            result["r"] = self.server.request("POST", TXT2IMG, {
                "prompt": "slow", "steps": 150, "batch_size": 4, "width": 256,
                "height": 256}, timeout=300)

        t = threading.Thread(target=run)
        t.start()
        seen = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and t.is_alive():
            p = self.api.get_progress()
            if p["state"]["job_count"] >= 1 and 0 < p["progress"] < 1:
                seen = p
                break
            time.sleep(0.005)
        t.join(300)
        self.assertIsNotNone(seen, "no progress seen while the job ran")
        self.assertEqual(seen["state"]["sampling_steps"], 600)
        self.assertGreater(seen["state"]["sampling_step"], 0)
        self.assertGreater(seen["eta_relative"], 0)
        self.assertEqual(result["r"].status, 200)
        after = self.api.get_progress()
        self.assertEqual((after["state"]["job_count"], after["eta_relative"]), (0, 0.0))

    # --- img2img ---------------------------------------------------------------------

    @staticmethod
    def picture(w=80, h=72, shift=0):
        """A deterministic RGB test picture: gradients and a block."""
        img = Image.new("RGB", (w, h))
        img.putdata([((x * 3 + shift) % 256, (y * 3) % 256, (x * y + shift) % 256)
                     for y in range(h) for x in range(w)])
        return img

    def test_img2img_through_webuiapi(self):
        kw = dict(prompt="a house", negative_prompt="rain", seed=11, steps=8, cfg_scale=5,
                  sampler_name="Euler", denoising_strength=0.5, width=80, height=72)
        r = self.api.img2img(images=[self.picture()], **kw)
        self.assertEqual(len(r.images), 1)
        self.assertEqual(r.images[0].size, (80, 72))
        self.assertEqual(r.info["denoising_strength"], 0.5)
        self.assertEqual(r.parameters["denoising_strength"], 0.5)
        self.assertNotIn("init_images", r.parameters)
        text = png_pixels(base64.b64decode(r.json["images"][0]))[2]
        self.assertEqual(text, r.info["infotexts"][0])
        self.assertIn("Size: 80x72, Model: " + harness.TINY_NAME + ", Denoising strength: 0.5",
                      text)
        # int(8 × 0.5) = 4 steps: four U-Net calls of two rows (CFG)
        self.assertEqual(r.json["metrics"]["batch_sizes"], [2, 2, 2, 2])
        again = self.api.img2img(images=[self.picture()], **kw)
        self.assertEqual(r.images[0].tobytes(), again.images[0].tobytes(),
                         "the same request drew different pixels")
        other = self.api.img2img(images=[self.picture(shift=90)], **kw)
        self.assertNotEqual(r.images[0].tobytes(), other.images[0].tobytes(),
                            "the output does not depend on the init image")
        txt = self.api.txt2img(**{k: v for k, v in kw.items() if k != "denoising_strength"})
        self.assertNotEqual(r.images[0].tobytes(), txt.images[0].tobytes())

    def test_img2img_size_defaults_to_the_image(self):
        buf = io.BytesIO()
        self.picture(101, 90).save(buf, "JPEG", quality=95)
        r = self.server.request("POST", "/sdapi/v1/img2img", {
            "init_images": [base64.b64encode(buf.getvalue()).decode()], "steps": 4,
            "seed": 2, "batch_size": 2})
        self.assertEqual(r.status, 200, r.body[:300])
        info = json.loads(r.json()["info"])
        self.assertEqual((info["width"], info["height"]), (96, 88))
        self.assertEqual(info["all_seeds"], [2, 3])
        self.assertEqual(info["denoising_strength"], 0.75)  # A1111's default: int(4·0.75) = 3 steps
        self.assertEqual(r.json()["metrics"]["batch_sizes"], [4, 4, 4])
        for b64 in r.json()["images"]:
            self.assertEqual(png_pixels(base64.b64decode(b64))[0], (96, 88))

    def test_img2img_errors_name_the_field(self):
        url = "/sdapi/v1/img2img"
        good = base64.b64encode(self.picture_png()).decode()
        cases = [({"prompt": "x"}, "init_images"),
                 ({"init_images": ["aGVsbG8gd29ybGQh"]}, "init_images"),
                 ({"init_images": [good], "denoising_strength": 0}, "denoising_strength"),
                 ({"init_images": [good], "denoising_strength": 0.1, "steps": 5},
                  "denoising_strength"),
                 ({"init_images": [good], "resize_mode": 2}, "resize_mode"),
                 ({"init_images": [good], "mask": "aGVsbG8gd29ybGQh"}, "mask"),
                 ({"init_images": [good], "mask": good, "mask_blur": -1}, "mask_blur"),
                 ({"init_images": [good], "inpainting_fill": 4}, "inpainting_fill"),
                 ({"init_images": [good], "latent_mask": good}, "latent_mask"),
                 ({"init_images": [good], "width": 512}, "width")]
        for body, param in cases:
            with self.subTest(param=param, body=str(body)[:80]):
                assert_a1111_error(self, self.server.request("POST", url, body), 422, param)

    def test_inpaint_through_webuiapi(self):
        """img2img with a mask (webuiapi's mask_image): the pixels whose blurred mask is 0
        come back exactly as the start image (the overlay), the masked area is repainted;
        the fields are echoed, Mask blur in info and the PNG text; inpaint_full_res (true
        by default in webuiapi): the region around the mask generated and pasted back."""
        start = self.picture()
        mask = Image.new("L", start.size, 0)
        mask.paste(255, (40, 0, 80, 72))  # repaint the right half
        for fill in (0, 1, 2):
            kw = dict(prompt="a window", seed=5, steps=6, cfg_scale=5, sampler_name="Euler",
                      denoising_strength=0.75, width=80, height=72, mask_blur=4,
                      inpainting_fill=fill)
            r = self.api.img2img(images=[start], mask_image=mask, **kw)
            self.assertEqual(r.images[0].size, (80, 72))
            out = r.images[0].convert("RGB")
            blurred = mask.filter(ImageFilter.GaussianBlur(4))  # what the server blurs
            kept = [(x, y) for y in range(72) for x in range(80) if blurred.getpixel((x, y)) == 0]
            repainted = [(x, y) for y in range(72) for x in range(80)
                         if blurred.getpixel((x, y)) == 255]
            self.assertGreaterEqual(len(kept), 25 * 72)
            for xy in kept:
                self.assertEqual(out.getpixel(xy), start.getpixel(xy), (fill, xy))
            changed = sum(out.getpixel(xy) != start.getpixel(xy) for xy in repainted)
            self.assertGreater(changed, len(repainted) // 2, fill)
            self.assertEqual(r.parameters["mask_blur"], 4)
            self.assertEqual(r.parameters["inpainting_fill"], fill)
            self.assertIsNone(r.parameters["mask"])
            self.assertEqual(r.info["extra_generation_params"]["Mask blur"], 4)
            self.assertIn("Mask blur: 4", png_pixels(base64.b64decode(r.json["images"][0]))[2])
            self.assertNotIn("warnings", r.json)
        # inverted and without the crop: the left half repainted, no warning
        r = self.api.img2img(images=[start], mask_image=mask, inpainting_mask_invert=1,
                             inpaint_full_res=False, mask_blur=0, inpainting_fill=1, **{
                                 k: v for k, v in kw.items()
                                 if k not in ("mask_blur", "inpainting_fill")})
        out = r.images[0].convert("RGB")
        self.assertEqual(out.crop((40, 0, 80, 72)).tobytes(), start.crop((40, 0, 80, 72)).tobytes())
        self.assertNotEqual(out.crop((0, 0, 40, 72)).tobytes(), start.crop((0, 0, 40, 72)).tobytes())
        self.assertNotIn("warnings", r.json)

    def test_only_masked_pastes_into_the_start_image(self):
        """inpaint_full_res (webuiapi's default): a small box is generated at the request's
        size (64x64) around itself and pasted back, so the answer is the start image's
        size (80x72), every pixel outside the blurred box exactly the start image's and the
        box repainted; the parameters keep the request's size."""
        start = self.picture()
        mask = Image.new("L", start.size, 0)
        mask.paste(255, (50, 30, 66, 46))
        r = self.api.img2img(images=[start], mask_image=mask, prompt="a lamp", seed=9, steps=6,
                             cfg_scale=5, sampler_name="Euler", denoising_strength=1.0,
                             width=64, height=64, mask_blur=2, inpainting_fill=1,
                             inpaint_full_res=True, inpaint_full_res_padding=8)
        out = r.images[0].convert("RGB")
        self.assertEqual(out.size, start.size)
        self.assertEqual((r.parameters["width"], r.parameters["height"]), (64, 64))
        blurred = mask.filter(ImageFilter.GaussianBlur(2))
        kept = changed = boxed = 0
        for y in range(start.size[1]):
            for x in range(start.size[0]):
                v = blurred.getpixel((x, y))
                if v == 0:
                    kept += 1
                    self.assertEqual(out.getpixel((x, y)), start.getpixel((x, y)), (x, y))
                elif v == 255:
                    boxed += 1
                    changed += out.getpixel((x, y)) != start.getpixel((x, y))
        self.assertGreater(kept, 80 * 72 // 2)
        self.assertGreater(changed, boxed // 2)
        self.assertNotIn("warnings", r.json)

    def picture_png(self):
        buf = io.BytesIO()
        self.picture().save(buf, "PNG")
        return buf.getvalue()

    def test_metrics_count_the_routes(self):
        self.server.request("POST", TXT2IMG, {"steps": 0})
        self.server.request("POST", "/sdapi/v1/img2img", {"steps": 0})
        self.server.request("GET", "/sdapi/v1/samplers")
        samples = self.server.metrics()
        seen = {(dict(ls)["route"], dict(ls)["code"]) for (n, ls), v in samples.items()
                if n == "diffusiond_http_requests_total" and v > 0}
        self.assertIn(("/sdapi/v1/txt2img", "422"), seen)
        self.assertIn(("/sdapi/v1/img2img", "422"), seen)
        self.assertIn(("/sdapi/v1/{info}", "200"), seen)


class TestAuth(harness.ServerCase):
    KEY = "sk-a1111"
    ENV = {"DIFFUSIOND_API_KEYS": KEY}

    def test_sdapi_needs_the_key(self):
        r = self.server.request("GET", "/sdapi/v1/sd-models")
        assert_a1111_error(self, r, 401)
        self.assertTrue(r.header("WWW-Authenticate").startswith("Bearer"))
        r = self.server.request("POST", TXT2IMG, {"steps": 2},
                                headers={"Authorization": f"Bearer {self.KEY}"})
        self.assertEqual(r.status, 200, r.body[:300])


if __name__ == "__main__":
    unittest.main()
