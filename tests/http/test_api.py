"""tests/http/test_api.py — one `diffusiond serve` on the tiny SD1 fixture: every route,
the body checks (411/413/415), the malformed-request cases (one test method each), the
generation response (shape, metrics, Server-Timing, seeds, images that decode to the
right size in each format, url images), X-Request-Id.

Run: .venv/bin/python -m unittest -v tests/http/test_api.py  (DIFFUSIOND_BIN set)."""
import base64
import io
import json
import re
import socket
import time
import unittest

from PIL import Image

import harness
from harness import Server, image_kind

SERVER = None
GEN = "/v1/images/generations"
FAST = {"steps": 2}  # the tiny model at 64×64, 2 steps: a few ms


def setUpModule():
    global SERVER
    SERVER = Server(["--max-steps", "150", "--max-n", "8", "--url-ttl-s", "600"])


def tearDownModule():
    if SERVER:
        code = SERVER.stop()
        SERVER.close()
        assert code == 0, f"diffusiond serve exited {code} after SIGTERM"


def assert_error(tc, r, status, param=None, code=None, type_=None, check_param=True):
    """r is an OpenAI-shaped error with that status (and param/code when given)."""
    tc.assertEqual(r.status, status, r.body[:400])
    tc.assertTrue(r.header("Content-Type", ).startswith("application/json"), r.header("Content-Type"))
    body = r.json()
    tc.assertEqual(set(body), {"error"}, body)
    err = body["error"]
    tc.assertEqual(set(err), {"message", "type", "param", "code"}, err)
    tc.assertIsInstance(err["message"], str)
    tc.assertTrue(err["message"])
    tc.assertIsInstance(err["type"], str)
    if type_:
        tc.assertEqual(err["type"], type_, err)
    if check_param:
        tc.assertEqual(err["param"], param, err)
        if param:
            tc.assertTrue(err["message"].startswith(param), err)
    if code is not None:
        tc.assertEqual(err["code"], code, err)
    tc.assertTrue(r.header("X-Request-Id"), "X-Request-Id missing on an error")
    return err


# --- routes --------------------------------------------------------------------------------


class TestRoutes(unittest.TestCase):
    def test_livez(self):
        r = SERVER.request("GET", "/livez")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["status"], "ok")
        self.assertTrue(r.header("Content-Type").startswith("application/json"))

    def test_healthz_alias(self):
        r = SERVER.request("GET", "/healthz")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["status"], "ok")

    def test_readyz(self):
        r = SERVER.request("GET", "/readyz")
        self.assertEqual(r.status, 200)
        self.assertIn("status", r.json())

    def test_head_livez(self):
        r = SERVER.request("HEAD", "/livez")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")

    def test_models(self):
        r = SERVER.request("GET", "/v1/models")
        self.assertEqual(r.status, 200)
        body = r.json()
        self.assertEqual(body["object"], "list")
        self.assertEqual(len(body["data"]), 1)
        m = body["data"][0]
        self.assertEqual(m["id"], harness.TINY_NAME)
        self.assertEqual(m["object"], "model")
        self.assertIsInstance(m["created"], int)
        self.assertLessEqual(abs(m["created"] - time.time()), 3600)
        self.assertIsInstance(m["owned_by"], str)

    def test_metrics_content_type(self):
        r = SERVER.request("GET", "/metrics")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.header("Content-Type").startswith("text/plain"), r.header("Content-Type"))
        self.assertIn("version=0.0.4", r.header("Content-Type"))

    def test_unknown_path_404(self):
        for path in ["/", "/v1", "/v1/images", "/v1/images/generations/x", "/livez/", "/nope",
                     "/v1/images/abc", "/v1/images/abc/0/1"]:
            with self.subTest(path=path):
                assert_error(self, SERVER.request("GET", path), 404, param=None,
                             type_="invalid_request_error")

    def test_method_not_allowed_generations(self):
        for method in ["GET", "PUT", "DELETE", "PATCH"]:
            with self.subTest(method=method):
                r = SERVER.request(method, GEN)
                assert_error(self, r, 405, param=None)
                self.assertEqual(r.header("Allow"), "POST, OPTIONS")

    def test_method_not_allowed_get_routes(self):
        for path in ["/livez", "/healthz", "/readyz", "/metrics", "/v1/models"]:
            with self.subTest(path=path):
                r = SERVER.request("POST", path, body=b"{}",
                                   headers={"Content-Type": "application/json"})
                assert_error(self, r, 405, param=None)
                allow = {m.strip() for m in r.header("Allow").split(",")}
                self.assertEqual(allow, {"GET", "HEAD", "OPTIONS"})

    def test_options_without_cors(self):
        """CORS off: OPTIONS is no preflight; every route answers 204 with Allow."""
        for path, allow in [(GEN, "POST, OPTIONS"), ("/v1/models", "GET, HEAD, OPTIONS"),
                            ("/livez", "GET, HEAD, OPTIONS"), ("/metrics", "GET, HEAD, OPTIONS")]:
            with self.subTest(path=path):
                r = SERVER.request("OPTIONS", path, headers={
                    "Origin": "http://example.com", "Access-Control-Request-Method": "POST"})
                self.assertEqual(r.status, 204)
                self.assertEqual(r.body, b"")
                self.assertEqual(r.header("Allow"), allow)
                self.assertIsNone(r.header("Access-Control-Allow-Origin"))
                self.assertTrue(r.header("X-Request-Id"))
        assert_error(self, SERVER.request("OPTIONS", "/nope"), 404)

    def test_no_cors_headers_by_default(self):
        r = SERVER.request("GET", "/v1/models", headers={"Origin": "http://example.com"})
        self.assertEqual(r.status, 200)
        for h in ["Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Vary"]:
            self.assertIsNone(r.header(h), h)

    def test_image_unknown_id_404(self):
        assert_error(self, SERVER.request("GET", "/v1/images/" + "0" * 32 + "/0"), 404)
        assert_error(self, SERVER.request("GET", "/v1/images/nonsense/zero"), 404,
                     check_param=False)


class TestRequestId(unittest.TestCase):
    def test_echoed(self):
        rid = "req-123_ABC.xyz:42"
        for path in ["/livez", "/v1/models", "/nope"]:
            with self.subTest(path=path):
                r = SERVER.request("GET", path, headers={"X-Request-Id": rid})
                self.assertEqual(r.header("X-Request-Id"), rid)

    def test_echoed_on_generation_and_errors(self):
        r = SERVER.generate({"prompt": "a", **FAST}, headers={"X-Request-Id": "gen-1"})
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(r.header("X-Request-Id"), "gen-1")
        r = SERVER.generate({"prompt": ""}, headers={"X-Request-Id": "gen-2"})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.header("X-Request-Id"), "gen-2")

    def test_generated_when_absent(self):
        a = SERVER.request("GET", "/livez").header("X-Request-Id")
        b = SERVER.request("GET", "/livez").header("X-Request-Id")
        self.assertRegex(a, r"^[0-9a-f]{32}$")
        self.assertNotEqual(a, b)

    def test_replaced_when_insane(self):
        for bad in ["x" * 129, "has space", 'quo"te', "back\\slash", "apos'trophe"]:
            with self.subTest(bad=bad[:20]):
                r = SERVER.request("GET", "/livez", headers={"X-Request-Id": bad})
                self.assertRegex(r.header("X-Request-Id"), r"^[0-9a-f]{32}$")

    def test_in_access_log(self):
        rid = "access-log-probe-42"
        r = SERVER.generate({"prompt": "logged", "user": "user-7", **FAST},
                            headers={"X-Request-Id": rid})
        self.assertEqual(r.status, 200)
        deadline = time.time() + 5
        line = None
        while time.time() < deadline and line is None:
            for ln in SERVER.log().splitlines():
                if rid in ln and ln.lstrip().startswith("{"):
                    line = json.loads(ln)
            time.sleep(0.05)
        self.assertIsNotNone(line, "no JSON access-log line with the request id")
        self.assertEqual(line["request_id"], rid)
        self.assertEqual(line["method"], "POST")
        self.assertEqual(line["path"], GEN)
        self.assertEqual(line["status"], 200)
        self.assertEqual(line["user"], "user-7")
        self.assertIn("total_ms", line)

    def test_128_chars_kept(self):
        rid = "a" * 128
        self.assertEqual(SERVER.request("GET", "/livez", headers={"X-Request-Id": rid})
                         .header("X-Request-Id"), rid)


# --- bodies ----------------------------------------------------------------------------------


def raw_post(headers, body=b"", path=GEN):
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return SERVER.raw(head.encode() + b"\r\n" + body)


class TestBodyChecks(unittest.TestCase):
    def test_411_without_content_length(self):
        r = raw_post({"Content-Type": "application/json"})
        self.assertIsNotNone(r, "connection closed without an answer")
        assert_error(self, r, 411, param=None)

    def test_411_chunked(self):
        body = b'{"prompt":"a"}'
        chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
        r = raw_post({"Content-Type": "application/json", "Transfer-Encoding": "chunked"}, chunked)
        self.assertIsNotNone(r)
        assert_error(self, r, 411, param=None)

    def test_413_before_the_body_is_read(self):
        # Only the headers are sent: the answer must come without the body.
        big = 16 * 1024 * 1024
        with socket.create_connection(("127.0.0.1", SERVER.port), timeout=10) as s:
            s.sendall((f"POST {GEN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       f"Content-Length: {big}\r\n\r\n").encode())
            t0 = time.monotonic()
            r = harness.read_response(s)
            dt = time.monotonic() - t0
        self.assertIsNotNone(r)
        assert_error(self, r, 413, param=None)
        self.assertLess(dt, 5.0)

    def test_413_at_limit_plus_one(self):
        limit = 8 * 1024 * 1024  # --max-body-bytes default
        with socket.create_connection(("127.0.0.1", SERVER.port), timeout=10) as s:
            s.sendall((f"POST {GEN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       f"Content-Length: {limit + 1}\r\n\r\n").encode())
            r = harness.read_response(s)
        assert_error(self, r, 413, param=None)

    def test_at_limit_is_read(self):
        # A body of exactly the limit is read and parsed (then 400: prompt too long).
        limit = 8 * 1024 * 1024  # --max-body-bytes default
        prefix = b'{"prompt":"'
        body = prefix + b"a" * (limit - len(prefix) - 2) + b'"}'
        self.assertEqual(len(body), limit)
        r = SERVER.request("POST", GEN, body=body, headers={"Content-Type": "application/json"})
        assert_error(self, r, 400, param="prompt")

    def test_415_text_plain(self):
        r = SERVER.request("POST", GEN, body=b'{"prompt":"a"}',
                           headers={"Content-Type": "text/plain"})
        assert_error(self, r, 415, param=None)

    def test_415_form(self):
        r = SERVER.request("POST", GEN, body=b"prompt=a",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert_error(self, r, 415, param=None)

    def test_415_missing_content_type(self):
        r = SERVER.request("POST", GEN, body=b'{"prompt":"a"}')
        assert_error(self, r, 415, param=None)

    def test_415_json_lookalike(self):
        r = SERVER.request("POST", GEN, body=b'{"prompt":"a"}',
                           headers={"Content-Type": "application/jsonx"})
        assert_error(self, r, 415, param=None)

    def test_json_with_charset_accepted(self):
        r = SERVER.request("POST", GEN, body=json.dumps({"prompt": "a", **FAST}),
                           headers={"Content-Type": "application/json; charset=utf-8"})
        self.assertEqual(r.status, 200, r.body[:300])

    def test_duplicate_content_length_400(self):
        body = b'{"prompt":"a","steps":1}'
        r = raw_post({"Content-Type": "application/json", "Content-Length": str(len(body)),
                      "content-length": str(len(body))}, body)
        err = assert_error(self, r, 400, param=None)
        self.assertEqual(err["code"], "invalid_content_length")

    def test_transfer_encoding_with_content_length_411(self):
        body = b'{"prompt":"a","steps":1}'
        r = raw_post({"Content-Type": "application/json", "Content-Length": str(len(body)),
                      "Transfer-Encoding": "chunked"}, body)
        assert_error(self, r, 411, param=None)

    def test_malformed_content_length_400(self):
        for cl in ["12abc", "-5", "1 2", "0x10"]:
            with self.subTest(cl=cl):
                r = raw_post({"Content-Type": "application/json", "Content-Length": cl},
                             b'{"prompt":"a"}')
                self.assertIsNotNone(r)
                self.assertEqual(r.status, 400)
                self.assertEqual(SERVER.request("GET", "/livez").status, 200)

    def _one_well_formed_response(self, req):
        """One HTTP response for req: one status line, a body of Content-Length bytes."""
        with socket.create_connection(("127.0.0.1", SERVER.port), timeout=10) as s:
            s.sendall(req)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        self.assertEqual(data.count(b"HTTP/1.1 "), 1, data[:600])
        head, _, body = data.partition(b"\r\n\r\n")
        m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
        self.assertIsNotNone(m, head)
        self.assertEqual(len(body), int(m.group(1)), data[:600])

    def test_no_host_is_one_response(self):
        self._one_well_formed_response(b"GET /livez HTTP/1.1\r\nConnection: close\r\n\r\n")

    @unittest.expectedFailure
    def test_bad_content_length_is_one_response(self):
        """KNOWN LIBRARY BUG: libmicrohttpd 0.9.75 (Debian 12) answers a malformed
        Content-Length itself, before any route sees the request, and sends its 400's
        status line and headers twice (reproduced with a bare MHD daemon; docs/serve.md).
        Marked expectedFailure so that a libmicrohttpd that fixes it shows up as an
        unexpected success."""
        self._one_well_formed_response(
            (f"POST {GEN} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
             "Content-Type: application/json\r\nContent-Length: 12abc\r\n\r\n{}").encode())

    def test_no_host_400(self):
        r = SERVER.raw(b"GET /livez HTTP/1.1\r\nConnection: close\r\n\r\n")
        err = assert_error(self, r, 400, param=None)
        self.assertEqual(err["code"], "missing_host")

    def test_header_too_large_431(self):
        r = SERVER.raw(b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100000 +
                       b"\r\nConnection: close\r\n\r\n")
        self.assertIsNotNone(r)
        self.assertIn(r.status, (413, 431))
        self.assertEqual(SERVER.request("GET", "/livez").status, 200)

    def test_http_1_0(self):
        r = SERVER.raw(b"GET /livez HTTP/1.0\r\n\r\n")
        self.assertEqual(r.status, 200)
        self.assertEqual(json.loads(r.body)["status"], "ok")

    def test_server_survives_garbage(self):
        for junk in [b"\x00\x01\x02garbage\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                     b"POST " + GEN.encode() + b" HTTP/1.1\r\nContent-Length: abc\r\n\r\n"]:
            with self.subTest(junk=junk[:20]):
                try:
                    r = SERVER.raw(junk, timeout=5)
                except OSError:
                    r = None
                if r is not None:
                    self.assertGreaterEqual(r.status, 400)
                self.assertEqual(SERVER.request("GET", "/livez").status, 200)


# --- malformed requests: each case is its own test method --------------------------------

LONG = "a" * 4001
# (name, body bytes or JSON-able, expected status, expected param)
MALFORMED = [
    ("empty_body", b"", 400, None),
    ("not_json", b"hello", 400, None),
    ("json_array", b"[]", 400, None),
    ("json_string", b'"prompt"', 400, None),
    ("json_number", b"42", 400, None),
    ("json_null", b"null", 400, None),
    ("truncated", b'{"prompt": "a"', 400, None),
    ("trailing_garbage", b'{"prompt": "a"} x', 400, None),
    ("two_objects", b'{"prompt": "a"}{"prompt": "b"}', 400, None),
    ("nan_literal", b'{"prompt": "a", "guidance_scale": NaN}', 400, "guidance_scale"),
    ("single_quotes", b"{'prompt': 'a'}", 400, None),
    ("utf8_bom", b'\xef\xbb\xbf{"prompt": "a"}', 400, None),
    ("duplicate_prompt", b'{"prompt": "a", "prompt": "b"}', 400, "prompt"),
    ("duplicate_n", b'{"prompt": "a", "n": 1, "n": 2}', 400, "n"),
    ("missing_prompt", {}, 400, "prompt"),
    ("prompt_null", {"prompt": None}, 400, "prompt"),
    ("prompt_empty", {"prompt": ""}, 400, "prompt"),
    ("prompt_number", {"prompt": 1}, 400, "prompt"),
    ("prompt_array", {"prompt": ["a"]}, 400, "prompt"),
    ("prompt_object", {"prompt": {"text": "a"}}, 400, "prompt"),
    ("prompt_too_long", {"prompt": LONG}, 400, "prompt"),
    ("prompt_invalid_utf8", b'{"prompt": "a\xff\xfeb"}', 400, "prompt"),
    ("prompt_nul", b'{"prompt": "a\\u0000b"}', 400, "prompt"),
    ("prompt_lone_surrogate", b'{"prompt": "a\\ud800b"}', 400, "prompt"),
    ("negative_prompt_number", {"prompt": "a", "negative_prompt": 5}, 400, "negative_prompt"),
    ("negative_prompt_too_long", {"prompt": "a", "negative_prompt": LONG}, 400, "negative_prompt"),
    ("n_zero", {"prompt": "a", "n": 0}, 400, "n"),
    ("n_over_max", {"prompt": "a", "n": 9}, 400, "n"),
    ("n_negative", {"prompt": "a", "n": -1}, 400, "n"),
    ("n_float", {"prompt": "a", "n": 1.5}, 400, "n"),
    ("n_float_exponent", b'{"prompt": "a", "n": 15e-1}', 400, "n"),
    ("n_float_over_max", b'{"prompt": "a", "n": 9.0}', 400, "n"),
    ("steps_float", {"prompt": "a", "steps": 10.5}, 400, "steps"),
    ("seed_float_negative", b'{"prompt": "a", "seed": -1.0}', 400, "seed"),
    ("seed_float_2_63", b'{"prompt": "a", "seed": 9223372036854775808.0}', 400, "seed"),
    ("n_string", {"prompt": "a", "n": "2"}, 400, "n"),
    ("n_bool", {"prompt": "a", "n": True}, 400, "n"),
    ("n_huge", b'{"prompt": "a", "n": 99999999999999999999999}', 400, "n"),
    ("size_no_x", {"prompt": "a", "size": "64"}, 400, "size"),
    ("size_missing_height", {"prompt": "a", "size": "64x"}, 400, "size"),
    ("size_missing_width", {"prompt": "a", "size": "x64"}, 400, "size"),
    ("size_capital_x", {"prompt": "a", "size": "64X64"}, 400, "size"),
    ("size_not_multiple_of_8", {"prompt": "a", "size": "68x64"}, 400, "size"),
    ("size_below_min", {"prompt": "a", "size": "56x64"}, 400, "size"),
    ("size_above_max", {"prompt": "a", "size": "64x2056"}, 400, "size"),
    ("size_zero", {"prompt": "a", "size": "0x0"}, 400, "size"),
    ("size_negative", {"prompt": "a", "size": "-64x64"}, 400, "size"),
    ("size_trailing_space", {"prompt": "a", "size": "64x64 "}, 400, "size"),
    ("size_number", {"prompt": "a", "size": 64}, 400, "size"),
    ("size_huge_digits", {"prompt": "a", "size": "99999999999x64"}, 400, "size"),
    ("response_format_png", {"prompt": "a", "response_format": "png"}, 400, "response_format"),
    ("response_format_number", {"prompt": "a", "response_format": 1}, 400, "response_format"),
    ("output_format_gif", {"prompt": "a", "output_format": "gif"}, 400, "output_format"),
    ("output_format_upper", {"prompt": "a", "output_format": "PNG"}, 400, "output_format"),
    ("output_compression_101", {"prompt": "a", "output_compression": 101}, 400,
     "output_compression"),
    ("output_compression_negative", {"prompt": "a", "output_compression": -1}, 400,
     "output_compression"),
    ("output_compression_float", {"prompt": "a", "output_compression": 50.5}, 400,
     "output_compression"),
    ("model_empty", {"prompt": "a", "model": ""}, 400, "model"),
    ("model_number", {"prompt": "a", "model": 5}, 400, "model"),
    ("user_number", {"prompt": "a", "user": 1}, 400, "user"),
    ("user_too_long", {"prompt": "a", "user": "u" * 257}, 400, "user"),
    ("quality_unknown", {"prompt": "a", "quality": "ultra"}, 400, "quality"),
    ("style_unknown", {"prompt": "a", "style": "bold"}, 400, "style"),
    ("stream_true", {"prompt": "a", "stream": True}, 400, "stream"),
    ("stream_string", {"prompt": "a", "stream": "no"}, 400, "stream"),
    ("steps_zero", {"prompt": "a", "steps": 0}, 400, "steps"),
    ("steps_over_max", {"prompt": "a", "steps": 151}, 400, "steps"),
    ("steps_string", {"prompt": "a", "steps": "10"}, 400, "steps"),
    ("steps_bool", {"prompt": "a", "steps": True}, 400, "steps"),
    ("guidance_negative", {"prompt": "a", "guidance_scale": -0.5}, 400, "guidance_scale"),
    ("guidance_over_max", {"prompt": "a", "guidance_scale": 100.5}, 400, "guidance_scale"),
    ("guidance_string", {"prompt": "a", "guidance_scale": "7"}, 400, "guidance_scale"),
    ("guidance_bool", {"prompt": "a", "guidance_scale": False}, 400, "guidance_scale"),
    ("seed_negative", {"prompt": "a", "seed": -1}, 400, "seed"),
    ("seed_2_64", b'{"prompt": "a", "seed": 18446744073709551616}', 400, "seed"),
    ("seed_float", {"prompt": "a", "seed": 1.5}, 400, "seed"),
    ("seed_string", {"prompt": "a", "seed": "42"}, 400, "seed"),
    ("sampler_unknown", {"prompt": "a", "sampler": "nope"}, 400, "sampler"),
    ("sampler_number", {"prompt": "a", "sampler": 3}, 400, "sampler"),
    ("scheduler_unknown", {"prompt": "a", "scheduler": "nope"}, 400, "scheduler"),
    ("karras_with_ddim", {"prompt": "a", "sampler": "ddim", "scheduler": "karras"}, 400,
     "scheduler"),
    ("lcm_with_karras", {"prompt": "a", "sampler": "lcm", "scheduler": "karras"}, 400,
     "scheduler"),
    ("clip_skip_negative", {"prompt": "a", "clip_skip": -1}, 400, "clip_skip"),
    ("clip_skip_too_deep", {"prompt": "a", "clip_skip": 2}, 400, "clip_skip"),  # 2 layers
    ("clip_skip_string", {"prompt": "a", "clip_skip": "1"}, 400, "clip_skip"),
    ("model_unknown", {"prompt": "a", "model": "no-such-model"}, 404, "model"),
]


class TestMalformed(unittest.TestCase):
    """One method per case (test_malformed_<name>), so each is reported on its own."""

    def _check(self, body, status, param):
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        r = SERVER.request("POST", GEN, body=body, headers={"Content-Type": "application/json"})
        err = assert_error(self, r, status, param=param, type_="invalid_request_error")
        if status == 404:
            self.assertEqual(err["code"], "model_not_found")
        # The server is still fine.
        self.assertEqual(SERVER.request("GET", "/livez").status, 200)


def _make_case(body, status, param):
    def test(self):
        self._check(body, status, param)
    return test


for _name, _body, _status, _param in MALFORMED:
    setattr(TestMalformed, f"test_malformed_{_name}", _make_case(_body, _status, _param))


class TestMalformedCount(unittest.TestCase):
    def test_at_least_40_cases(self):
        names = [n for n in dir(TestMalformed) if n.startswith("test_malformed_")]
        self.assertGreaterEqual(len(names), 40)
        self.assertEqual(len(names), len(MALFORMED), "duplicate case names")


# --- generation --------------------------------------------------------------------------------


def decode_image(tc, b64, fmt, size):
    data = base64.b64decode(b64, validate=True)
    tc.assertEqual(image_kind(data), fmt)
    img = Image.open(io.BytesIO(data))
    img.load()
    tc.assertEqual(img.size, size)
    tc.assertEqual({"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}[fmt], img.format)
    return img, data


class TestGenerate(unittest.TestCase):
    def gen(self, **fields):
        payload = {"prompt": "a red cube on a table", **FAST, **fields}
        r = SERVER.generate(payload)
        self.assertEqual(r.status, 200, r.body[:500])
        self.assertTrue(r.header("Content-Type").startswith("application/json"))
        return r, r.json()

    def test_shape_and_metrics(self):
        t0 = int(time.time())
        r, body = self.gen(seed=7)
        self.assertLessEqual(set(body), {"created", "data", "output_format", "size", "metrics",
                                         "warnings"})
        self.assertNotIn("warnings", body)
        self.assertIsInstance(body["created"], int)
        self.assertLessEqual(abs(body["created"] - t0), 5)
        self.assertEqual(body["output_format"], "png")
        self.assertEqual(body["size"], "64x64")
        self.assertEqual(len(body["data"]), 1)
        self.assertEqual(body["data"][0]["seed"], 7)
        self.assertNotIn("revised_prompt", body["data"][0])
        m = body["metrics"]
        for k in ["queue_ms", "text_encode_ms", "denoise_ms", "vae_decode_ms", "image_encode_ms",
                  "total_ms", "steps_per_second"]:
            self.assertIsInstance(m[k], (int, float), k)
            self.assertGreaterEqual(m[k], 0, k)
        self.assertGreater(m["total_ms"], 0)
        self.assertGreater(m["denoise_ms"], 0)
        self.assertGreater(m["steps_per_second"], 0)
        self.assertGreaterEqual(m["total_ms"] + 0.01, m["queue_ms"] + m["denoise_ms"])
        self.assertEqual(m["seeds"], [7])
        self.assertIsInstance(m["batch_sizes"], list)
        self.assertEqual(len(m["batch_sizes"]), 2)  # one U-Net call per step
        self.assertTrue(all(isinstance(b, int) and b >= 1 for b in m["batch_sizes"]))

    def test_server_timing_matches_metrics(self):
        r, body = self.gen()
        st = r.header("Server-Timing")
        self.assertIsNotNone(st)
        parts = dict(re.findall(r"(\w+);dur=([0-9.]+)", st))
        self.assertEqual(list(parts), ["queue", "encode", "denoise", "decode", "image", "total"])
        m = body["metrics"]
        for name, key in [("queue", "queue_ms"), ("encode", "text_encode_ms"),
                          ("denoise", "denoise_ms"), ("decode", "vae_decode_ms"),
                          ("image", "image_encode_ms"), ("total", "total_ms")]:
            self.assertAlmostEqual(float(parts[name]), m[key], delta=0.01, msg=name)

    def test_png_decodes(self):
        _, body = self.gen(size="64x64", output_format="png")
        decode_image(self, body["data"][0]["b64_json"], "png", (64, 64))

    def test_jpeg_decodes(self):
        _, body = self.gen(output_format="jpeg", output_compression=80)
        self.assertEqual(body["output_format"], "jpeg")
        decode_image(self, body["data"][0]["b64_json"], "jpeg", (64, 64))

    def test_webp_decodes(self):
        _, body = self.gen(output_format="webp")
        self.assertEqual(body["output_format"], "webp")
        decode_image(self, body["data"][0]["b64_json"], "webp", (64, 64))

    def test_webp_lossless_at_100(self):
        _, b1 = self.gen(output_format="webp", output_compression=100, seed=5)
        _, b2 = self.gen(output_format="png", seed=5)
        i1, _ = decode_image(self, b1["data"][0]["b64_json"], "webp", (64, 64))
        i2, _ = decode_image(self, b2["data"][0]["b64_json"], "png", (64, 64))
        self.assertEqual(i1.convert("RGB").tobytes(), i2.convert("RGB").tobytes())

    def test_non_square_size(self):
        _, body = self.gen(size="128x64", output_format="jpeg")
        self.assertEqual(body["size"], "128x64")
        decode_image(self, body["data"][0]["b64_json"], "jpeg", (128, 64))

    def test_size_auto_is_native(self):
        _, body = self.gen(size="auto")
        self.assertEqual(body["size"], "64x64")

    def test_n_images_seeds_consecutive(self):
        _, body = self.gen(n=3, seed=100)
        self.assertEqual([d["seed"] for d in body["data"]], [100, 101, 102])
        self.assertEqual(body["metrics"]["seeds"], [100, 101, 102])
        imgs = [decode_image(self, d["b64_json"], "png", (64, 64))[1] for d in body["data"]]
        self.assertEqual(len(set(imgs)), 3, "three seeds gave identical images")

    def test_seed_reproducible(self):
        _, a = self.gen(seed=1234, output_format="png")
        _, b = self.gen(seed=1234, output_format="png")
        self.assertEqual(a["data"][0]["b64_json"], b["data"][0]["b64_json"])

    def test_max_seed(self):
        _, body = self.gen(seed=2 ** 63 - 1)
        self.assertEqual(body["data"][0]["seed"], 2 ** 63 - 1)

    def test_random_seed_reported(self):
        _, a = self.gen()
        _, b = self.gen()
        sa, sb = a["data"][0]["seed"], b["data"][0]["seed"]
        self.assertIsInstance(sa, int)
        self.assertGreaterEqual(sa, 0)
        self.assertNotEqual(sa, sb)
        self.assertEqual(a["metrics"]["seeds"], [sa])

    def test_png_has_parameters_text(self):
        _, body = self.gen(seed=9, negative_prompt="blurry")
        img, _ = decode_image(self, body["data"][0]["b64_json"], "png", (64, 64))
        params = img.info.get("parameters")
        self.assertIsNotNone(params, img.info)
        self.assertIn("a red cube on a table", params)
        self.assertIn("Negative prompt: blurry", params)
        self.assertIn("Seed: 9", params)
        self.assertIn("Steps: 2", params)
        self.assertIn("Size: 64x64", params)

    def test_unknown_fields_ignored(self):
        self.gen(foo="bar", nested={"deep": [1, 2, {"x": None}]}, background="auto")

    def test_null_fields_are_absent(self):
        _, body = self.gen(n=None, size=None, response_format=None, output_format=None,
                           seed=None, negative_prompt=None, user=None)
        self.assertEqual(body["size"], "64x64")
        self.assertEqual(body["output_format"], "png")
        self.assertIn("b64_json", body["data"][0])

    def test_openai_fields_accepted(self):
        _, body = self.gen(model=harness.TINY_NAME, quality="hd", style="vivid", user="u-1",
                           stream=False)
        self.assertEqual(len(body["data"]), 1)

    def test_sampler_and_scheduler_names(self):
        for sampler, scheduler in [("euler", "karras"), ("Euler a", None), ("ddim", "trailing"),
                                   ("DPM++ 2M Karras", None), ("dpmpp_2m", "linspace")]:
            with self.subTest(sampler=sampler, scheduler=scheduler):
                fields = {"sampler": sampler}
                if scheduler:
                    fields["scheduler"] = scheduler
                self.gen(**fields)

    def test_guidance_and_clip_skip(self):
        self.gen(guidance_scale=0, clip_skip=1)
        self.gen(guidance_scale=7.5)

    def test_long_prompt_warning(self):
        prompt = " ".join(["word"] * 120)
        _, body = self.gen(prompt=prompt)
        self.assertIn("warnings", body)
        self.assertTrue(any("prompt" in w and "77" in w for w in body["warnings"]),
                        body["warnings"])

    def test_integral_reals_are_integers(self):
        """JSON Schema's integer includes 2.0 and 1e0 (same number); so does the parser."""
        r = SERVER.generate(b'{"prompt": "a", "n": 2.0, "steps": 2e0, "seed": 7.0, '
                            b'"output_compression": 8e1, "output_format": "jpeg"}',
                            headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual([d["seed"] for d in r.json()["data"]], [7, 8])
        r = SERVER.generate(b'{"prompt": "a", "steps": 1, "seed": 1e18}',
                            headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(r.json()["data"][0]["seed"], 10 ** 18)

    def test_user_256_code_points(self):
        """The spec bounds `user` at 256 characters (JSON Schema counts code points)."""
        self.gen(user="u" * 256)
        self.gen(user="é" * 256)

    def test_unicode_prompt(self):
        self.gen(prompt="un chat 猫 🐱 — café")

    def test_prompt_at_max_chars(self):
        self.gen(prompt="a" * 4000)

    def test_url_format(self):
        _, body = self.gen(response_format="url", n=2, output_format="jpeg")
        urls = [d["url"] for d in body["data"]]
        for d in body["data"]:
            self.assertNotIn("b64_json", d)
        ids = set()
        for i, url in enumerate(urls):
            m = re.search(r"/v1/images/([^/]+)/(\d+)$", url)
            self.assertIsNotNone(m, url)
            ids.add(m.group(1))
            self.assertEqual(int(m.group(2)), i)
            r = SERVER.request("GET", m.group(0))
            self.assertEqual(r.status, 200)
            self.assertEqual(r.header("Content-Type"), "image/jpeg")
            self.assertEqual(image_kind(r.body), "jpeg")
            self.assertEqual(Image.open(io.BytesIO(r.body)).size, (64, 64))
        self.assertEqual(len(ids), 1)
        # Past the last index: 404.
        assert_error(self, SERVER.request("GET", f"/v1/images/{ids.pop()}/2"), 404,
                     check_param=False)


class TestMetricsAfterTraffic(unittest.TestCase):
    def test_counters_move(self):
        before = SERVER.metrics()
        SERVER.generate({"prompt": "count me", "n": 2, **FAST})
        SERVER.generate({"prompt": ""})
        after = SERVER.metrics()
        gen_route = "/v1/images/generations"
        self.assertGreaterEqual(
            harness.metric(after, "diffusiond_http_requests_total", route=gen_route, code="200") -
            harness.metric(before, "diffusiond_http_requests_total", route=gen_route, code="200"), 1)
        self.assertGreaterEqual(
            harness.metric(after, "diffusiond_http_requests_total", route=gen_route, code="400") -
            harness.metric(before, "diffusiond_http_requests_total", route=gen_route, code="400"), 1)
        self.assertGreaterEqual(harness.metric(after, "diffusiond_images_generated_total") -
                                harness.metric(before, "diffusiond_images_generated_total"), 2)
        self.assertGreaterEqual(harness.metric(after, "diffusiond_denoise_steps_total") -
                                harness.metric(before, "diffusiond_denoise_steps_total"), 4)


if __name__ == "__main__":
    unittest.main()
