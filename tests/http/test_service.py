"""tests/http/test_service.py — `diffusiond serve` started with different settings:
bearer auth (keys from the environment and from a file; health exempt), CORS (off,
allow-list, "*"), the queue-full 429 (Retry-After, retry-after-ms; still ready), url
images expiring, 32 concurrent requests, a client disconnect cancelling its job,
503 while loading, SIGTERM under load (nothing admitted lost, readiness 503 while
draining, exit 0), /metrics through `promtool check metrics`.

Run: .venv/bin/python -m unittest -v tests/http/test_service.py  (DIFFUSIOND_BIN set)."""
import base64
import http.client
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from PIL import Image

import harness
from harness import Server, ServerCase, image_kind, metric, run_threads

GEN = "/v1/images/generations"
# Load tests size their requests with Server.steps_for (a calibration request on the
# server under test), so they take about the same wall time on any machine or build;
# their servers allow up to 1000 steps.
LONG_STEPS = ["--max-steps", "1000"]


def error_of(tc, r, status):
    tc.assertEqual(r.status, status, r.body[:300])
    tc.assertTrue(r.header("Content-Type").startswith("application/json"))
    err = r.json()["error"]
    tc.assertEqual(set(err), {"message", "type", "param", "code"})
    return err


# --- auth ------------------------------------------------------------------------------------


class TestAuthEnv(ServerCase):
    ENV = {"DIFFUSIOND_API_KEYS": "key-one,key-two"}

    def test_missing_token_401(self):
        for method, path in [("GET", "/v1/models"), ("GET", "/metrics"), ("POST", GEN)]:
            with self.subTest(path=path):
                r = self.server.request(method, path, body={"prompt": "a", "steps": 1}
                                        if method == "POST" else None)
                err = error_of(self, r, 401)
                self.assertEqual(err["type"], "authentication_error")
                self.assertTrue(r.header("WWW-Authenticate").startswith("Bearer"))

    def test_wrong_token_401(self):
        for auth in ["Bearer key-three", "Bearer key-on", "Bearer key-one2", "Basic a2V5LW9uZQ==",
                     "Bearer", "key-one", "Bearer key-one extra"]:
            with self.subTest(auth=auth):
                r = self.server.request("GET", "/v1/models", headers={"Authorization": auth})
                error_of(self, r, 401)
                self.assertTrue(r.header("WWW-Authenticate").startswith("Bearer"))

    def test_right_tokens(self):
        for key in ["key-one", "key-two"]:
            with self.subTest(key=key):
                h = {"Authorization": f"Bearer {key}"}
                self.assertEqual(self.server.request("GET", "/v1/models", headers=h).status, 200)
                self.assertEqual(self.server.request("GET", "/metrics", headers=h).status, 200)
                r = self.server.generate({"prompt": "a", "steps": 1}, headers=h)
                self.assertEqual(r.status, 200, r.body[:300])
        r = self.server.request("GET", "/v1/models", headers={"Authorization": "bearer key-one"})
        self.assertEqual(r.status, 200, "the scheme is case-insensitive")

    def test_health_exempt(self):
        for path in ["/livez", "/healthz", "/readyz"]:
            with self.subTest(path=path):
                self.assertEqual(self.server.request("GET", path).status, 200)

    def test_auth_checked_before_body(self):
        # A 401 is decided on the headers: no body needed.
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as s:
            s.sendall((f"POST {GEN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Content-Length: 100000\r\n\r\n").encode())
            r = harness.read_response(s)
        error_of(self, r, 401)


class TestAuthFile(ServerCase):
    @classmethod
    def setUpClass(cls):
        cls.keyfile = tempfile.NamedTemporaryFile("w", suffix=".keys", delete=False)
        cls.keyfile.write("# keys\n\n  file-key-1  \nfile-key-2\n")
        cls.keyfile.close()
        cls.ARGS = ["--api-keys-file", cls.keyfile.name]
        cls.ENV = {"DIFFUSIOND_API_KEYS": "env-key"}
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            os.unlink(cls.keyfile.name)

    def test_file_and_env_keys(self):
        for key, want in [("file-key-1", 200), ("file-key-2", 200), ("env-key", 200),
                          ("# keys", 401), ("", 401)]:
            with self.subTest(key=key):
                r = self.server.request("GET", "/v1/models",
                                        headers={"Authorization": f"Bearer {key}"})
                self.assertEqual(r.status, want)

    def test_keys_not_in_ps(self):
        with open(f"/proc/{self.server.proc.pid}/cmdline", "rb") as f:
            cmdline = f.read()
        self.assertNotIn(b"file-key-1", cmdline)
        self.assertNotIn(b"env-key", cmdline)
        self.assertNotIn(b"file-key-1", self.server.log().encode())
        self.assertNotIn(b"env-key", self.server.log().encode())


# --- configured limits (flags and DIFFUSIOND_* variables) ------------------------------------


class TestConfiguredLimits(ServerCase):
    # Flags win over variables: DIFFUSIOND_MAX_N=5 loses to --max-n 2; the others come
    # from the environment alone.
    ARGS = ["--max-n", "2", "--max-width", "128", "--min-side", "32"]
    ENV = {"DIFFUSIOND_MAX_N": "5", "DIFFUSIOND_MAX_STEPS": "4", "DIFFUSIOND_MAX_HEIGHT": "96",
           "DIFFUSIOND_MAX_PROMPT_CHARS": "10", "DIFFUSIOND_MAX_BODY_BYTES": "2048",
           "DIFFUSIOND_MODEL_NAME": "tiny-one"}

    def check(self, payload, param):
        r = self.server.generate(payload)
        err = error_of(self, r, 400)
        self.assertEqual(err["param"], param, err)

    def test_limits_from_flags_and_env(self):
        ok = {"prompt": "0123456789", "n": 2, "steps": 4, "size": "128x96"}
        r = self.server.generate(ok)
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(r.json()["size"], "128x96")
        self.assertEqual(self.server.generate({"prompt": "a", "steps": 1, "size": "32x32"})
                         .status, 200)
        self.check({**ok, "n": 3}, "n")
        self.check({**ok, "steps": 5}, "steps")
        self.check({**ok, "size": "136x64"}, "size")
        self.check({**ok, "size": "64x104"}, "size")
        self.check({**ok, "size": "24x64"}, "size")
        self.check({**ok, "prompt": "01234567890"}, "prompt")
        self.check({**ok, "negative_prompt": "01234567890"}, "negative_prompt")

    def test_body_limit_from_env(self):
        big = json.dumps({"prompt": "a", "pad": "x" * 2100})
        r = self.server.request("POST", GEN, body=big, headers={"Content-Type": "application/json"})
        error_of(self, r, 413)

    def test_model_name_from_env(self):
        ids = [m["id"] for m in self.server.request("GET", "/v1/models").json()["data"]]
        self.assertEqual(ids, ["tiny-one"])
        self.assertEqual(self.server.generate({"prompt": "a", "steps": 1, "model": "tiny-one"})
                         .status, 200)
        r = self.server.generate({"prompt": "a", "steps": 1, "model": "sd1-tiny"})
        self.assertEqual(error_of(self, r, 404)["code"], "model_not_found")


class TestBodyBudget(ServerCase):
    # two 2000-byte bodies held (sent up to their headers) fill a 4000-byte budget
    ARGS = ["--max-body-bytes", "2048", "--max-body-bytes-total", "4000"]

    def hold(self, length):
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        s.sendall((f"POST {GEN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {length}\r\n\r\n{{").encode())
        return s

    def small(self):
        return self.server.request("POST", GEN, body=json.dumps({"prompt": "a", "steps": 1}),
                                   headers={"Content-Type": "application/json"})

    def rejected(self):
        return metric(self.server.metrics(), "diffusiond_rejections_total", reason="body_budget")

    def test_bodies_held_at_once(self):
        self.assertEqual(self.small().status, 200)
        held = [self.hold(2000), self.hold(2000)]
        try:
            time.sleep(0.3)  # both headers read: 4000 of 4000 bytes reserved
            self.assertEqual(metric(self.server.metrics(), "diffusiond_http_body_bytes_held"),
                             4000)
            r = self.small()  # ~30 bytes: would pass 4000
            err = error_of(self, r, 503)
            self.assertEqual(err["code"], "uploads_busy", err)
            self.assertIn("--max-body-bytes-total", err["message"])
            self.assertEqual(r.header("Retry-After"), "1")
            self.assertGreaterEqual(self.rejected(), 1)
        finally:
            held[0].close()
        # the closed connection's reservation comes back
        deadline = time.monotonic() + 10
        while True:
            r = self.small()
            if r.status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(r.status, 200, r.body[:300])
        held[1].close()
        # a finished request keeps nothing: many in a row fit the budget
        for _ in range(5):
            self.assertEqual(self.small().status, 200)
        deadline = time.monotonic() + 10
        while (metric(self.server.metrics(), "diffusiond_http_body_bytes_held") != 0 and
               time.monotonic() < deadline):
            time.sleep(0.1)
        self.assertEqual(metric(self.server.metrics(), "diffusiond_http_body_bytes_held"), 0)


class TestBadSettings(unittest.TestCase):
    def test_bad_flag_names_flag_and_variable(self):
        for args, env, needle in [(["--port", "70000"], {}, "--port"),
                                  ([], {"DIFFUSIOND_MAX_N": "0"}, "DIFFUSIOND_MAX_N"),
                                  (["--batching", "sometimes"], {}, "--batching"),
                                  (["--max-body-bytes-total", "1MiB"], {},
                                   "--max-body-bytes-total"),
                                  (["--no-such-flag"], {}, "--no-such-flag")]:
            with self.subTest(args=args, env=env):
                env2 = {k: v for k, v in os.environ.items() if not k.startswith("DIFFUSIOND_")}
                env2.update(env)
                p = subprocess.run([harness.BIN, "serve", "--model", harness.TINY_MODEL] + args,
                                   env=env2, capture_output=True, text=True, timeout=30)
                self.assertNotEqual(p.returncode, 0)
                self.assertIn(needle, p.stdout + p.stderr)

    def test_help(self):
        p = subprocess.run([harness.BIN, "serve", "--help"], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 0)
        for flag in ["--host", "--port", "--queue-capacity", "--max-body-bytes", "--cors-origins",
                     "--api-keys-file", "DIFFUSIOND_API_KEYS", "--drain-grace-s", "--watchdog-s",
                     "--url-ttl-s"]:
            self.assertIn(flag, p.stdout)
        self.assertNotIn("--api-keys ", p.stdout.replace("--api-keys-file", ""),
                         "API keys must not be a flag")


# --- CORS ------------------------------------------------------------------------------------


class TestCorsAllowList(ServerCase):
    ARGS = ["--cors-origins", "https://app.example.com,http://localhost:3000"]

    def preflight(self, origin, method="POST", headers="content-type, authorization"):
        h = {"Origin": origin, "Access-Control-Request-Method": method}
        if headers:
            h["Access-Control-Request-Headers"] = headers
        return self.server.request("OPTIONS", GEN, headers=h)

    def test_preflight_allowed(self):
        r = self.preflight("https://app.example.com")
        self.assertEqual(r.status, 204)
        self.assertEqual(r.header("Access-Control-Allow-Origin"), "https://app.example.com")
        self.assertIn("POST", r.header("Access-Control-Allow-Methods"))
        self.assertIn("authorization", r.header("Access-Control-Allow-Headers").lower())
        self.assertIn("content-type", r.header("Access-Control-Allow-Headers").lower())
        self.assertTrue(r.header("Access-Control-Max-Age").isdigit())
        self.assertIn("Origin", r.header("Vary"))
        self.assertIsNone(r.header("Access-Control-Allow-Credentials"))
        self.assertTrue(r.header("X-Request-Id"))

    def test_preflight_second_origin(self):
        r = self.preflight("http://localhost:3000")
        self.assertEqual(r.status, 204)

    def test_preflight_refused_origin(self):
        for origin in ["https://evil.example.com", "https://app.example.com:8443",
                       "http://app.example.com", "null"]:
            with self.subTest(origin=origin):
                r = self.preflight(origin)
                self.assertEqual(r.status, 403)
                self.assertIsNone(r.header("Access-Control-Allow-Origin"))
                self.assertIn("Origin", r.header("Vary"))

    def test_preflight_refused_method(self):
        r = self.preflight("https://app.example.com", method="DELETE")
        self.assertEqual(r.status, 403)
        self.assertIsNone(r.header("Access-Control-Allow-Origin"))

    def test_simple_request_allowed_origin(self):
        r = self.server.request("GET", "/v1/models", headers={"Origin": "https://app.example.com"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Access-Control-Allow-Origin"), "https://app.example.com")
        self.assertIn("Origin", r.header("Vary"))
        expose = r.header("Access-Control-Expose-Headers").lower()
        for h in ["x-request-id", "server-timing", "retry-after"]:
            self.assertIn(h, expose)
        self.assertIsNone(r.header("Access-Control-Allow-Credentials"))

    def test_simple_request_other_origin(self):
        r = self.server.request("GET", "/v1/models", headers={"Origin": "https://evil.example.com"})
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header("Access-Control-Allow-Origin"))
        self.assertIn("Origin", r.header("Vary"))

    def test_cors_on_errors_and_generation(self):
        h = {"Origin": "https://app.example.com"}
        r = self.server.generate({"prompt": "a", "steps": 1}, headers=h)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Access-Control-Allow-Origin"), "https://app.example.com")
        r = self.server.generate({"prompt": ""}, headers=h)
        self.assertEqual(r.status, 400)
        self.assertEqual(r.header("Access-Control-Allow-Origin"), "https://app.example.com")

    def test_options_without_preflight_headers(self):
        r = self.server.request("OPTIONS", GEN)
        self.assertEqual(r.status, 204)
        self.assertEqual(r.header("Allow"), "POST, OPTIONS")
        self.assertIsNone(r.header("Access-Control-Allow-Origin"))


class TestCorsStar(ServerCase):
    ARGS = ["--cors-origins", "*"]
    ENV = {"DIFFUSIOND_API_KEYS": "k"}

    def test_star_never_with_credentials(self):
        r = self.server.request("OPTIONS", GEN, headers={
            "Origin": "https://any.example.org", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization"})
        self.assertEqual(r.status, 204, "preflight is exempt from auth")
        self.assertEqual(r.header("Access-Control-Allow-Origin"), "*")
        self.assertIsNone(r.header("Access-Control-Allow-Credentials"))
        r = self.server.request("GET", "/v1/models", headers={
            "Origin": "https://any.example.org", "Authorization": "Bearer k"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Access-Control-Allow-Origin"), "*")
        self.assertIsNone(r.header("Access-Control-Allow-Credentials"))


# --- queue full, url expiry, concurrency, cancellation ---------------------------------------


class TestQueueFull(ServerCase):
    ARGS = ["--queue-capacity", "1", "--batching", "none"] + LONG_STEPS

    def test_429_when_full(self):
        n = 6
        results = [None] * n
        slow = {"prompt": "slow", "size": "128x128",
                "steps": self.server.steps_for(1.5, size=128)}

        def one(i):
            results[i] = self.server.generate({**slow, "seed": i}, timeout=300)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
            time.sleep(0.05)
        # While full: still ready, still live.
        ready = self.server.request("GET", "/readyz", timeout=5)
        live = self.server.request("GET", "/livez", timeout=5)
        for t in threads:
            t.join()
        self.assertEqual(ready.status, 200, "a full queue must not make the server unready")
        self.assertEqual(live.status, 200)
        codes = sorted(r.status for r in results)
        self.assertIn(200, codes)
        self.assertIn(429, codes, codes)
        self.assertTrue(set(codes) <= {200, 429}, codes)
        for r in results:
            if r.status != 429:
                continue
            err = error_of(self, r, 429)
            self.assertEqual(err["code"], "queue_full")
            self.assertEqual(err["param"], None)
            self.assertEqual(err["type"], "rate_limit_error")
            ra = r.header("Retry-After")
            ra_ms = r.header("retry-after-ms")
            self.assertIsNotNone(ra)
            self.assertIsNotNone(ra_ms)
            self.assertTrue(ra.isdigit() and int(ra) >= 1, ra)
            self.assertTrue(ra_ms.isdigit(), ra_ms)
            self.assertGreaterEqual(int(ra) * 1000, int(ra_ms), "Retry-After is rounded up")
            self.assertLess(int(ra) * 1000 - int(ra_ms), 1000)
        samples = self.server.metrics()
        self.assertGreaterEqual(
            metric(samples, "diffusiond_rejections_total", reason="queue_full"),
            codes.count(429))
        self.assertGreaterEqual(
            metric(samples, "diffusiond_http_requests_total", route=GEN, code="429"),
            codes.count(429))


class TestDeadlineAndPriority(ServerCase):
    ARGS = []

    def test_deadline_cannot_be_met_429(self):
        # 1 ms for a many-step request: refused at arrival, with when to retry
        r = self.server.generate({"prompt": "late", "steps": 40, "deadline_ms": 1})
        err = error_of(self, r, 429)
        self.assertEqual(err["code"], "deadline")
        self.assertEqual(err["type"], "rate_limit_error")
        self.assertIsNotNone(r.header("Retry-After"))
        samples = self.server.metrics()
        self.assertGreaterEqual(
            metric(samples, "diffusiond_rejections_total", reason="deadline"), 1)

    def test_deadline_and_priority_met(self):
        r = self.server.generate({"prompt": "in time", "steps": 2, "deadline_ms": 60000,
                                  "priority": 5})
        self.assertEqual(r.status, 200, r.body[:300])

    def test_bad_values_name_the_field(self):
        for field, value in (("deadline_ms", 0), ("deadline_ms", "100"), ("priority", 101)):
            r = self.server.generate({"prompt": "x", field: value})
            err = error_of(self, r, 400)
            self.assertEqual(err["param"], field)


class TestUrlExpiry(ServerCase):
    ARGS = ["--url-ttl-s", "1", "--url-store-images", "4"]

    def fetch_path(self, url):
        return url[url.index("/v1/images/"):]

    def test_url_expires(self):
        r = self.server.generate({"prompt": "a", "steps": 1, "response_format": "url"})
        self.assertEqual(r.status, 200, r.body[:300])
        path = self.fetch_path(r.json()["data"][0]["url"])
        got = self.server.request("GET", path)
        self.assertEqual(got.status, 200)
        self.assertEqual(image_kind(got.body), "png")
        time.sleep(2.2)
        gone = self.server.request("GET", path)
        error_of(self, gone, 404)

    def test_more_images_than_the_store_400(self):
        r = self.server.generate({"prompt": "a", "steps": 1, "n": 5, "response_format": "url"})
        err = error_of(self, r, 400)
        self.assertEqual(err["param"], "n")
        r = self.server.generate({"prompt": "a", "steps": 1, "n": 5})  # b64_json: fine
        self.assertEqual(r.status, 200, r.body[:300])

    def test_store_capacity_evicts_oldest(self):
        paths = []
        for i in range(3):
            r = self.server.generate({"prompt": "a", "steps": 1, "n": 2, "response_format": "url"})
            self.assertEqual(r.status, 200, r.body[:300])
            paths.append([self.fetch_path(d["url"]) for d in r.json()["data"]])
        # 6 images into a store of 4: the first set is gone, the last is there.
        self.assertEqual(self.server.request("GET", paths[0][0]).status, 404)
        self.assertEqual(self.server.request("GET", paths[2][0]).status, 200)
        self.assertEqual(self.server.request("GET", paths[2][1]).status, 200)


class TestConcurrency(ServerCase):
    ARGS = ["--queue-capacity", "64", "--max-connections", "256"]

    def test_32_concurrent(self):
        def one(i):
            fmt = ["png", "jpeg", "webp"][i % 3]
            r = self.server.generate({"prompt": f"image {i}", "steps": 3, "seed": 1000 + i,
                                      "output_format": fmt, "n": 1 + i % 2},
                                     headers={"X-Request-Id": f"c-{i}"}, timeout=300)
            return i, fmt, r

        results = run_threads(one, [(i,) for i in range(32)])
        for res in results:
            self.assertNotIsInstance(res, BaseException, repr(res))
            i, fmt, r = res
            with self.subTest(i=i):
                self.assertEqual(r.status, 200, r.body[:300])
                self.assertEqual(r.header("X-Request-Id"), f"c-{i}")
                body = r.json()
                self.assertEqual(len(body["data"]), 1 + i % 2)
                self.assertEqual([d["seed"] for d in body["data"]],
                                 [1000 + i + k for k in range(1 + i % 2)])
                for d in body["data"]:
                    data = base64.b64decode(d["b64_json"])
                    self.assertEqual(image_kind(data), fmt)
                    self.assertEqual(Image.open(io.BytesIO(data)).size, (64, 64))
        # Batching: a same-seed request alone gives the same image as in the crowd.
        alone = self.server.generate({"prompt": "image 0", "steps": 3, "seed": 1000,
                                      "output_format": "png", "n": 1})
        crowd = [r for (i, _, r) in results if i == 0][0]
        a = Image.open(io.BytesIO(base64.b64decode(alone.json()["data"][0]["b64_json"])))
        b = Image.open(io.BytesIO(base64.b64decode(crowd.json()["data"][0]["b64_json"])))
        diff = max(abs(x - y) for x, y in zip(a.convert("RGB").tobytes(), b.convert("RGB").tobytes()))
        self.assertLessEqual(diff, 2, "an image depends on who shared its batch")


class TestDisconnectCancels(ServerCase):
    ARGS = ["--batching", "none"] + LONG_STEPS

    def cancelled(self):
        s = self.server.metrics()
        return metric(s, "diffusiond_scheduler_completed_total", result="cancelled")

    def test_disconnect_cancels_job(self):
        self.check_disconnect(b"")

    def test_disconnect_behind_pipelined_bytes(self):
        # a second request sent while the first waits, then the close: the hang-up sits
        # behind unread bytes (a peek alone sees the bytes and never the end)
        self.check_disconnect(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")

    def test_disconnect_while_start_image_decodes(self):
        # A 12-megapixel start image is decoded in the encoder pool after the body is in;
        # the client leaves at once, so its job is submitted after it is gone (or the
        # check of clients sees it first): either way the job is cancelled, nothing
        # runs for nobody, and the server goes on.
        import base64
        import io
        w, h = 4000, 3000
        img = Image.linear_gradient("L").resize((w, h)).convert("RGB")
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=85)
        steps = self.server.steps_for(20, size=128)
        body = json.dumps({"prompt": "abandoned", "width": 128, "height": 128, "steps": steps,
                           "init_images": [base64.b64encode(buf.getvalue()).decode()]}).encode()
        self.assertLess(len(body), 8 << 20)
        before = self.cancelled()
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        s.sendall((f"POST /sdapi/v1/img2img HTTP/1.1\r\nHost: x\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
                  .encode() + body)
        s.close()
        t0 = time.monotonic()
        while time.monotonic() < t0 + 15 and self.cancelled() <= before:
            time.sleep(0.05)
        self.assertEqual(self.cancelled(), before + 1,
                         "the job of a client that left during its image's decode")
        r = self.server.generate({"prompt": "next", "steps": 2})
        self.assertEqual(r.status, 200)
        self.assertLess(time.monotonic() - t0, 5.0)

    def check_disconnect(self, then):
        before = self.cancelled()
        steps = self.server.steps_for(20, size=128)
        body = json.dumps({"prompt": "abandoned", "size": "128x128", "steps": steps}).encode()
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        s.sendall((f"POST {GEN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
        time.sleep(0.7)  # admitted and running
        if then:
            s.sendall(then)
            time.sleep(0.1)
        s.close()
        t0 = time.monotonic()
        deadline = t0 + 15
        while time.monotonic() < deadline and self.cancelled() <= before:
            time.sleep(0.1)
        self.assertGreater(self.cancelled(), before,
                           "the job of a client that went away was not cancelled")
        # The worker is free again well before the 150 steps would have run.
        r = self.server.generate({"prompt": "next", "steps": 2})
        self.assertEqual(r.status, 200)
        self.assertLess(time.monotonic() - t0, 4.0)


class TestConnections(ServerCase):
    ARGS = ["--connection-timeout-s", "2", "--max-connections", "8"]

    def test_idle_connection_closed(self):
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as s:
            t0 = time.monotonic()
            self.assertEqual(s.recv(1), b"", "the server sent something to an idle client")
            waited = time.monotonic() - t0
        self.assertGreater(waited, 1.0)
        self.assertLess(waited, 6.0, "--connection-timeout-s 2 did not close the idle connection")

    def test_connection_limit(self):
        """--max-connections 8: with 8 idle connections open, a 9th waits in the
        listen backlog until the idle timeout (2 s) frees a slot; with 7 it is
        served at once."""
        def timed_livez(n_idle):
            idle = [socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
                    for _ in range(n_idle)]
            try:
                time.sleep(0.1)  # accepted by the daemon
                t0 = time.monotonic()
                r = self.server.request("GET", "/livez", timeout=10)
                return r.status, time.monotonic() - t0
            finally:
                for s in idle:
                    s.close()

        status, dt = timed_livez(7)
        self.assertEqual(status, 200)
        self.assertLess(dt, 0.9, "a connection under the limit was held back")
        time.sleep(2.5)
        status, dt = timed_livez(8)
        self.assertEqual(status, 200)
        self.assertGreater(dt, 1.2, "a 9th connection was served at once with a limit of 8")


class TestPerIpLimit(ServerCase):
    """--max-connections-per-ip 3 against a slowloris: one address (127.0.0.3, loopback,
    used by nothing else: the harness's own requests come from 127.0.0.1 and their
    closing may lag) holds 3 connections open by sending a request head a byte at a
    time, under the idle timeout; a 4th connection from it is refused, while a client
    from another address (127.0.0.2) is served at once."""
    ARGS = ["--max-connections-per-ip", "3", "--connection-timeout-s", "5"]

    def request_from(self, source):
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10,
                                      source_address=(source, 0)) as s:
            s.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            r = harness.read_response(s)
            return r.status if r else None

    def test_slowloris_from_one_address(self):
        head = b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
        slow = [socket.create_connection(("127.0.0.1", self.server.port), timeout=10,
                                         source_address=("127.0.0.3", 0)) for _ in range(3)]
        stop = threading.Event()

        def trickle():
            for i in range(len(head)):
                if stop.wait(0.2):
                    return
                for s in slow:
                    try:
                        s.sendall(head[i:i + 1])
                    except OSError:
                        pass

        t = threading.Thread(target=trickle)
        t.start()
        try:
            # a 4th connection from the address is refused once the daemon has accepted
            # the three (on a loaded machine it may take a while to get to them)
            deadline = time.monotonic() + 8
            while self.request_from("127.0.0.3") is not None:
                self.assertLess(time.monotonic(), deadline,
                                "a 4th connection from the same address is still served")
                time.sleep(0.1)
            t0 = time.monotonic()
            self.assertEqual(self.request_from("127.0.0.2"), 200)
            self.assertLess(time.monotonic() - t0, 1.0, "another address was held back")
        finally:
            stop.set()
            t.join()
            for s in slow:
                s.close()
        deadline = time.monotonic() + 8  # the daemon sees the three close
        while self.request_from("127.0.0.3") != 200:
            self.assertLess(time.monotonic(), deadline, "the address stays refused")
            time.sleep(0.1)


# --- life cycle ------------------------------------------------------------------------------


class TestLoading(unittest.TestCase):
    def test_503_while_loading(self):
        """The port is bound before the weights load: until the warm-up has run,
        /readyz and POST answer 503 with Retry-After while /livez answers 200.  The
        window is short with the tiny model (~0.1 s), so a few starts are tried; the
        503 must be seen in at least one."""
        seen_503 = False
        for attempt in range(8):
            srv = Server(["--warmup"], wait_ready=False)
            try:
                r = srv.request("GET", "/readyz", timeout=5)
                if r.status == 503:
                    seen_503 = True
                    self.assertTrue(r.header("Retry-After").isdigit())
                    self.assertIn(r.json()["status"], ["loading", "warming up"])
                    post = srv.generate({"prompt": "early", "steps": 1})
                    live = srv.request("GET", "/livez", timeout=5)
                    self.assertEqual(live.status, 200, "liveness must not fail while loading")
                    if post.status == 503:
                        self.assertTrue(post.header("Retry-After").isdigit())
                        error_of(self, post, 503)
                    else:  # the warm-up finished in between
                        self.assertEqual(post.status, 200, post.body[:300])
                else:
                    self.assertEqual(r.status, 200)
                srv.wait_ready()
            finally:
                code = srv.stop()
                srv.close()
            self.assertEqual(code, 0)
            if seen_503:
                break
        self.assertTrue(seen_503, "never saw /readyz 503 before ready in 8 starts")


class TestShutdown(unittest.TestCase):
    def test_sigterm_under_load(self):
        srv = Server(["--drain-grace-s", "120", "--queue-capacity", "32"] + LONG_STEPS)
        try:
            n = 8
            steps = srv.steps_for(3, size=128, images=n)
            # A keep-alive connection opened before the signal, to watch readiness.
            watch = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
            watch.request("GET", "/readyz")
            r = watch.getresponse()
            r.read()
            self.assertEqual(r.status, 200)

            payloads = [{"prompt": f"drain {i}", "size": "128x128", "steps": steps, "seed": i}
                        for i in range(n)]
            results = [None] * n
            sent = threading.Barrier(n + 1)

            def one(i):
                conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=120)
                body = json.dumps(payloads[i])
                conn.putrequest("POST", GEN)
                conn.putheader("Content-Type", "application/json")
                conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body.encode())
                sent.wait()
                try:
                    resp = conn.getresponse()
                    results[i] = (resp.status, resp.read())
                except Exception as e:  # reported below
                    results[i] = e
                finally:
                    conn.close()

            threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
            for t in threads:
                t.start()
            sent.wait()
            time.sleep(0.5)  # all admitted
            srv.signal(signal.SIGTERM)
            time.sleep(0.2)
            watch.request("GET", "/readyz")
            rr = watch.getresponse()
            rr.read()
            watch.request("POST", GEN, body=json.dumps({"prompt": "late", "steps": 1}),
                          headers={"Content-Type": "application/json"})
            late = watch.getresponse()
            late_body = late.read()
            watch.close()
            for t in threads:
                t.join(timeout=180)
            code = srv.wait(timeout=120)
        finally:
            srv.kill()
            log = srv.log()
            srv.close()
        self.assertEqual(rr.status, 503, "readiness must be 503 while draining")
        self.assertTrue((rr.getheader("Retry-After") or "").isdigit())
        self.assertEqual(late.status, 503, late_body[:300])
        self.assertTrue((late.getheader("Retry-After") or "").isdigit())
        self.assertEqual(json.loads(late_body)["error"]["type"], "server_error")
        for i, res in enumerate(results):
            with self.subTest(i=i):
                self.assertNotIsInstance(res, BaseException, f"request {i} lost: {res!r}\n{log[-3000:]}")
                status, body = res
                self.assertEqual(status, 200, body[:300])
                self.assertEqual(json.loads(body)["data"][0]["seed"], i)
        self.assertEqual(code, 0, log[-3000:])

    def test_new_connections_refused_while_draining(self):
        srv = Server(["--drain-grace-s", "120"] + LONG_STEPS)
        try:
            steps = srv.steps_for(2.5, size=128)
            conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=180)
            body = json.dumps({"prompt": "long", "size": "128x128", "steps": steps})
            conn.request("POST", GEN, body=body, headers={"Content-Type": "application/json"})
            time.sleep(0.5)
            srv.signal(signal.SIGTERM)
            time.sleep(0.3)
            refused = False
            try:
                r = srv.request("GET", "/livez", timeout=3)
                refused = r.status == 503
            except OSError:
                refused = True
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200, resp.read()[:300])
            conn.close()
            self.assertTrue(refused, "a new connection was served normally while draining")
            self.assertEqual(srv.wait(60), 0)
        finally:
            srv.kill()
            srv.close()

    def test_past_the_grace_503(self):
        """A job still running when --drain-grace-s runs out is answered 503
        (shutting_down) — answered, not dropped — and the exit code is still 0."""
        srv = Server(["--drain-grace-s", "1", "--batching", "none"] + LONG_STEPS)
        try:
            steps = srv.steps_for(20, size=128)
            conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=120)
            body = json.dumps({"prompt": "too long", "size": "128x128", "steps": steps})
            conn.request("POST", GEN, body=body, headers={"Content-Type": "application/json"})
            time.sleep(0.5)
            t0 = time.monotonic()
            srv.signal(signal.SIGTERM)
            resp = conn.getresponse()
            data = resp.read()
            conn.close()
            code = srv.wait(60)
            waited = time.monotonic() - t0
        finally:
            srv.kill()
            log = srv.log()
            srv.close()
        self.assertEqual(resp.status, 503, data[:300])
        err = json.loads(data)["error"]
        self.assertEqual(err["type"], "server_error")
        self.assertEqual(err["code"], "shutting_down")
        self.assertTrue((resp.getheader("Retry-After") or "").isdigit())
        self.assertLess(waited, 15, "the grace was not kept")
        self.assertEqual(code, 0, log[-2000:])

    def test_sigint_exits_0(self):
        srv = Server()
        try:
            srv.signal(signal.SIGINT)
            self.assertEqual(srv.wait(30), 0, srv.log()[-2000:])
        finally:
            srv.kill()
            srv.close()


# --- metrics -----------------------------------------------------------------------------------


class TestMetricsExposition(ServerCase):
    FAMILIES = [
        "diffusiond_http_requests_total", "diffusiond_http_request_duration_seconds_bucket",
        "diffusiond_queue_wait_seconds_bucket", "diffusiond_generation_duration_seconds_bucket",
        "diffusiond_queue_depth", "diffusiond_scheduler_backlog_seconds",
        "diffusiond_unet_batch_rows_bucket",
        "diffusiond_images_generated_total", "diffusiond_denoise_steps_total",
        "diffusiond_rejections_total", "diffusiond_model_loaded", "diffusiond_build_info",
        "process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
        "diffusiond_heap_in_use_bytes",
    ]

    def test_families_present(self):
        self.server.generate({"prompt": "a", "steps": 2})
        self.server.generate({"prompt": ""})
        s = self.server.metrics()
        for fam in self.FAMILIES:
            with self.subTest(family=fam):
                self.assertTrue(harness.has_family(s, fam), fam)
        self.assertEqual(metric(s, "diffusiond_model_loaded", model=harness.TINY_NAME), 1)
        self.assertGreater(metric(s, "process_resident_memory_bytes"), 1e6)
        # Histograms: _count equals the +Inf bucket, buckets are cumulative.
        for h in ["diffusiond_generation_duration_seconds", "diffusiond_queue_wait_seconds"]:
            inf = metric(s, h + "_bucket", le="+Inf")
            self.assertEqual(inf, metric(s, h + "_count"), h)
            self.assertGreaterEqual(inf, 1, h)

    def test_promtool(self):
        promtool = shutil.which("promtool")
        self.assertIsNotNone(promtool, "promtool not found (Debian package prometheus; "
                                       "scripts/packages.txt)")
        self.server.generate({"prompt": "a", "steps": 2})
        r = self.server.request("GET", "/metrics")
        self.assertEqual(r.status, 200)
        p = subprocess.run([promtool, "check", "metrics"], input=r.body,
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, (p.stdout + p.stderr).decode()[-3000:])


if __name__ == "__main__":
    unittest.main()
