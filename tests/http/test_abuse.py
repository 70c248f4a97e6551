"""tests/http/test_abuse.py — `diffusiond serve` under the abuse a public endpoint
meets (docs/reference matrix: "disconnect ×1000", "soak RSS ±2 %"):

- a disconnect storm: hundreds of generation requests from concurrent clients, each
  hanging up at a random moment — mid-head, mid-body, just after the body, while its
  job waits or runs, or never (it reads its answer) — and afterwards every accepted
  job accounted for exactly once (ok + error + cancelled = accepted),
  nothing left queued or running, the server live, ready and still generating;
- raw mutations: byte-level mutations of valid requests, each answered with one
  well-formed response (or closed), the server unharmed;
- a soak: a few hundred mixed requests (sizes, n, formats, samplers, url images,
  invalid bodies) and the server's resident memory after them within 2 % (or 4 MiB)
  of what it was after the first round, the same requests again (not in a
  sanitizer build, whose quarantine grows RSS; LeakSanitizer checks its exit).

Run: .venv/bin/python -m unittest -v tests/http/test_abuse.py  (DIFFUSIOND_BIN set).
DIFFUSIOND_ABUSE_SCALE (default 1) multiplies the request counts."""
import base64
import collections
import io
import json
import os
import random
import socket
import time
import unittest

from PIL import Image

from harness import ServerCase, metric, read_response, run_threads

GEN = "/v1/images/generations"
SCALE = float(os.environ.get("DIFFUSIOND_ABUSE_SCALE", "1"))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def fan_out(client, n):
    """client(k) for k < n in threads, each returning a list: their items, joined in
    order (an exception in a client is raised here)."""
    out = []
    for r in run_threads(client, [(k,) for k in range(n)], timeout=600):
        if isinstance(r, BaseException):
            raise r
        out += r
    return out


def sanitized(pid):
    """True when the process runs with a sanitizer runtime, whose quarantine and
    shadow memory make RSS meaningless (LeakSanitizer checks leaks at its exit)."""
    with open(f"/proc/{pid}/maps") as f:
        return any(lib in line for line in f for lib in ("libasan", "libtsan"))


def accounted(samples):
    """(jobs accepted, completed by any result, queue depth + active jobs); refusals
    (429) count apart, in diffusiond_scheduler_rejected_total."""
    accepted = metric(samples, "diffusiond_scheduler_submitted_total")
    completed = sum(metric(samples, "diffusiond_scheduler_completed_total", result=r)
                    for r in ("ok", "error", "cancelled"))
    busy = (metric(samples, "diffusiond_queue_depth") +
            metric(samples, "diffusiond_active_jobs"))
    return accepted, completed, busy


class AbuseCase(ServerCase):
    def settle(self, timeout=60):
        """Waits until every accepted job has completed, and asserts it: completed
        exactly once, nothing queued or running.  Returns the jobs accepted."""
        deadline = time.monotonic() + timeout
        while True:
            accepted, completed, busy = accounted(self.server.metrics())
            if (completed == accepted and busy == 0) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual((completed, busy), (accepted, 0),
                         "accepted jobs not all completed exactly once: " +
                         " ".join(f"{k[0]}{dict(k[1])}={v:g}" for k, v in
                                  self.server.metrics().items()
                                  if "scheduler" in k[0] or k[0] in (
                                      "diffusiond_queue_depth", "diffusiond_active_jobs")))
        return accepted

    def assert_healthy(self):
        self.assertEqual(self.server.request("GET", "/livez", timeout=10).status, 200)
        self.assertEqual(self.server.request("GET", "/readyz", timeout=10).status, 200)
        r = self.server.generate({"prompt": "still here", "steps": 2, "seed": 7})
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertIsNone(self.server.proc.poll(), "the server exited")


class TestDisconnectStorm(AbuseCase):
    # step batching (the default), a queue small enough that some clients meet a 429
    ARGS = ["--max-steps", "200", "--queue-capacity", "6", "--connection-timeout-s", "5"]
    CLIENTS = 16

    def one(self, rng, head, body):
        """One client: sends (part of) the request, then hangs up or reads the answer.
        Returns the status it read, or None when it hung up."""
        how = rng.choice(["head", "body", "sent", "wait", "wait", "wait", "read", "read"])
        data = head + body
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=180) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0"
                         if rng.random() < 0.3 else b"\0" * 8)  # some hang up with an RST
            if how == "head":
                s.sendall(data[:rng.randrange(1, len(head))])
                return None
            if how == "body":
                s.sendall(data[:len(head) + rng.randrange(0, len(body))])
                return None
            s.sendall(data)
            if how == "sent":
                return None
            if how == "wait":  # while its job waits or runs
                time.sleep(rng.uniform(0.0, 0.25))
                return None
            t0 = time.monotonic()
            r = read_response(s)  # None: closed (or timed out) with no answer
            return r.status if r else ("no answer" if time.monotonic() - t0 < 170 else "timeout")

    def test_disconnect_storm(self):
        n = int(1000 * SCALE)
        rng_seed = random.Random(1234)
        jobs = []
        for i in range(n):
            size = rng_seed.choice([64, 64, 96])
            payload = {"prompt": f"storm {i % 37}", "size": f"{size}x{size}",
                       "steps": rng_seed.randint(2, 24), "n": rng_seed.choice([1, 1, 2]),
                       "seed": i, "output_format": rng_seed.choice(["png", "jpeg"])}
            body = json.dumps(payload).encode()
            head = (f"POST {GEN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode()
            jobs.append((rng_seed.randrange(1 << 30), head, body))

        def client(k):
            out = []
            for seed, head, body in jobs[k::self.CLIENTS]:
                try:
                    out.append(self.one(random.Random(seed), head, body))
                except OSError as e:  # a reset while reading counts as a hang-up
                    out.append(f"oserror {type(e).__name__}")
            return out

        t0 = time.monotonic()
        statuses = fan_out(client, self.CLIENTS)  # a client that hangs fails here
        self.assertEqual(len(statuses), n)
        summary = collections.Counter("hung up" if s is None else s for s in statuses)
        errors = [s for s in statuses
                  if s not in (None, 200, 429) and not str(s).startswith("oserror")]
        self.assertEqual(errors, [], f"answers other than 200 and 429 (all: {summary})")
        read = [s for s in statuses if s is not None]
        self.assertGreater(read.count(200), n // 10,
                           f"too few generations answered (all: {summary})")
        accepted = self.settle()
        s = self.server.metrics()
        cancelled = metric(s, "diffusiond_scheduler_completed_total", result="cancelled")
        self.assertGreater(cancelled, 0, "no hang-up cancelled a job")
        self.assertEqual(metric(s, "diffusiond_scheduler_completed_total", result="error"), 0)
        self.assert_healthy()
        print(f"\n  storm: {n} clients in {time.monotonic() - t0:.1f} s; "
              f"{read.count(200)} answered 200, {read.count(429)} 429, "
              f"{len(statuses) - len(read)} hung up; accepted {accepted:.0f}, "
              f"cancelled {cancelled:.0f}")


class TestRawMutations(AbuseCase):
    """1000 byte-level mutations of valid requests — the OpenAI and A1111 generations,
    A1111's options and progress, health, models, metrics, a preflight — (bit flips, cut,
    doubled or spliced spans, header lines repeated or stretched, a random method, path
    or version)
    sent over raw sockets from 8 clients: every answer is one well-formed HTTP/1.1
    response with a status the service uses, an error answer labelled JSON parses with
    an "error" (MHD's own rejections of a broken request line are not JSON), and the
    server stays live, ready and generating.  A request cut short waits for the idle
    timeout (MHD does not end a connection at a half-close mid-request), hence 1 s."""
    ARGS = ["--max-steps", "8", "--max-body-bytes", "4KiB", "--connection-timeout-s", "1"]
    STATUSES = {200, 204, 400, 401, 404, 405, 411, 413, 415, 422, 429, 431, 501, 505}

    def seeds(self):
        gen = json.dumps({"prompt": "raw", "steps": 2, "size": "64x64", "n": 1}).encode()
        t2i = json.dumps({"prompt": "raw", "steps": 2, "width": 64, "height": 64,
                          "batch_size": 1, "sampler_name": "Euler a", "seed": -1}).encode()
        opts = b'{"sd_model_checkpoint": "sd1-tiny"}'
        buf = io.BytesIO()
        Image.new("RGB", (64, 64), (200, 40, 40)).save(buf, "PNG")  # ~100 bytes
        png = buf.getvalue()
        i2i = json.dumps({"prompt": "raw", "steps": 2, "init_images": [
            base64.b64encode(png).decode()], "denoising_strength": 0.5}).encode()
        boundary = "XyZzy42"
        form = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in (("prompt", "raw"), ("steps", "2"), ("strength", "0.5")))
        form += (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
                 f'filename="s.png"\r\nContent-Type: image/png\r\n\r\n').encode() + png
        form += f"\r\n--{boundary}--\r\n".encode()
        # inpainting: A1111's mask (white repaints) with its fields, and an edits form
        # whose mask part's transparent half is edited
        gray = Image.new("L", (64, 64), 0)
        gray.paste(255, (32, 0, 64, 64))
        buf = io.BytesIO()
        gray.save(buf, "PNG")
        inpaint = json.dumps({"prompt": "raw", "steps": 2, "init_images": [
            base64.b64encode(png).decode()], "mask": base64.b64encode(buf.getvalue()).decode(),
            "mask_blur": 4, "inpainting_fill": 0, "inpainting_mask_invert": 0,
            "inpaint_full_res": False, "inpaint_full_res_padding": 32}).encode()
        alpha = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
        alpha.paste((0, 0, 0, 0), (32, 0, 64, 64))
        buf = io.BytesIO()
        alpha.save(buf, "PNG")
        masked = form[:-len(f"--{boundary}--\r\n")] + (
            f'--{boundary}\r\nContent-Disposition: form-data; name="mask"; '
            f'filename="m.png"\r\nContent-Type: image/png\r\n\r\n').encode() + buf.getvalue()
        masked += f"\r\n--{boundary}--\r\n".encode()

        def post(path, body, ctype="application/json"):
            return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body

        return [
            post(GEN, gen),
            post("/sdapi/v1/txt2img", t2i),
            post("/sdapi/v1/img2img", i2i),
            post("/v1/images/edits", form, f"multipart/form-data; boundary={boundary}"),
            post("/sdapi/v1/img2img", inpaint),
            post("/v1/images/edits", masked, f"multipart/form-data; boundary={boundary}"),
            post("/sdapi/v1/options", opts),
            b"GET /sdapi/v1/progress HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAccept: */*\r\nConnection: close\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            b"OPTIONS /v1/images/generations HTTP/1.1\r\nHost: x\r\nOrigin: http://a\r\n"
            b"Access-Control-Request-Method: POST\r\nConnection: close\r\n\r\n",
        ]

    @staticmethod
    def mutate(rng, data):
        b = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(7)
            i = rng.randrange(len(b)) if b else 0
            j = min(len(b), i + rng.randint(1, 16))
            if op == 0 and b:      # flip a bit
                b[i] ^= 1 << rng.randrange(8)
            elif op == 1:          # cut the rest
                del b[i:]
            elif op == 2:          # double a span
                b[i:i] = b[i:j]
            elif op == 3:          # a random byte
                b[i:i] = bytes([rng.randrange(256)])
            elif op == 4:          # repeat a header line
                lines = bytes(b).split(b"\r\n")
                k = rng.randrange(len(lines))
                lines.insert(k, lines[k])
                b = bytearray(b"\r\n".join(lines))
            elif op == 5:          # stretch a span
                b[i:j] = b[i:j] * rng.choice([2, 100, 3000])
            else:                  # a random method, path or version token
                tok = rng.choice([b"PUT", b"DELETE", b"GET", b"POST", b"HTTP/1.0",
                                  b"HTTP/2.0", b"/../../etc/passwd", b"%00", b"/v1/images/x/9"])
                b[i:j] = tok
        return bytes(b)

    def check_answer(self, data, half_close=True):
        # half_close: the write side shut after the request — a client gone by the
        # server's check of suspended clients, so a slow generation answers "closed"
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=30) as s:
            try:
                s.sendall(data)
                if half_close:
                    s.shutdown(socket.SHUT_WR)
            except OSError:
                return "refused"
            r = read_response(s)
        if r is None:
            return "closed"
        self.assertIn(r.status, self.STATUSES, (data[:200], r.status))
        ctype = r.header("Content-Type") or ""
        if r.status >= 400 and ctype.startswith("application/json"):
            self.assertIn("error", json.loads(r.body), (data[:200], r.body[:200]))
        return r.status

    def test_raw_mutations(self):
        n = int(1000 * SCALE)
        seeds = self.seeds()
        for data in seeds[:6]:  # the POSTs start valid (the inpainting ones too)
            self.assertEqual(self.check_answer(data, half_close=False), 200, data[:120])
        rng = random.Random(99)
        cases = [self.mutate(random.Random(rng.randrange(1 << 30)), rng.choice(seeds))
                 for _ in range(n)]

        def client(k):
            out = []
            for data in cases[k::8]:
                try:
                    out.append(self.check_answer(data))
                except AssertionError as e:
                    out.append(AssertionError(str(e)[:300]))
            return out

        answers = fan_out(client, 8)
        failures = [str(a) for a in answers if isinstance(a, AssertionError)]
        seen = collections.Counter(a for a in answers if not isinstance(a, AssertionError))
        self.assertEqual(failures[:5], [])
        self.assertGreater(seen[400], n // 20, seen)
        self.assertGreater(seen[200], n // 20, seen)
        self.settle()
        self.assert_healthy()
        print(f"\n  raw: {n} mutated requests: {dict(sorted(seen.items(), key=str))}")


class TestSoak(AbuseCase):
    ARGS = ["--max-steps", "60", "--url-ttl-s", "2"]

    def round(self, rng, n):
        bad = [b"{", b'{"prompt": 5}', b'{"prompt": "x", "size": "7x7"}',
               b'{"prompt": "x", "n": 0}', b'{"prompt": "x", "steps": 9999}']

        def work(i):
            r = random.Random(rng + i)
            if r.random() < 0.15:
                resp = self.server.request("POST", GEN, r.choice(bad),
                                           {"Content-Type": "application/json"})
                return resp.status
            size = r.choice([64, 96, 128])
            payload = {"prompt": f"soak {r.randrange(50)}", "size": f"{size}x{size}",
                       "steps": r.randint(2, 8), "n": r.choice([1, 2]), "seed": i,
                       "output_format": r.choice(["png", "jpeg", "webp"]),
                       "response_format": r.choice(["b64_json", "url"]),
                       "sampler": r.choice(["euler", "euler_a", "dpmpp_2m"])}
            if r.random() < 0.2:  # the same through AUTOMATIC1111's route (PNG, b64)
                resp = self.server.request("POST", "/sdapi/v1/txt2img", {
                    "prompt": payload["prompt"], "width": size, "height": size,
                    "steps": payload["steps"], "batch_size": payload["n"], "seed": i,
                    "sampler_name": payload["sampler"]})
                return resp.status
            resp = self.server.generate(payload)
            if resp.status == 200 and payload["response_format"] == "url":
                url = resp.json()["data"][0]["url"]
                path = url[url.index("/v1/images/"):]
                got = self.server.request("GET", path)
                return 200 if got.status == 200 else 1000 + got.status
            return resp.status

        return fan_out(lambda k: [work(i) for i in range(k, n, 8)], 8)

    def memory(self):
        """(resident KiB, heap in use KiB) once every url image has expired
        (--url-ttl-s 2) and every accepted job has completed."""
        time.sleep(3)
        self.settle()
        # the store drops expired images when it is next used: a lookup (404) makes it
        # do so now, else how many linger depends on the last round's timing
        self.assertEqual(self.server.request("GET", "/v1/images/" + "0" * 32 + "/0").status, 404)
        heap = metric(self.server.metrics(), "diffusiond_heap_in_use_bytes") / 1024
        return rss_kib(self.server.proc.pid), heap

    def test_soak_rss(self):
        """Two mixes of requests, each run twice: the first pass warms every cache and
        sets the heap's high-water mark (the resident size keeps it: concurrent large
        batches decide it, and they vary with timing), the second pass must add
        neither heap in use (a leak) nor, beyond a small slack, resident memory."""
        n = int(250 * SCALE)
        first = [self.round(1, n), self.round(2, n)]
        for codes in first:
            self.assertTrue(all(c in (200, 400) for c in codes), sorted(set(codes)))
        rss0, heap0 = self.memory()
        second = [self.round(1, n), self.round(2, n)]  # the same requests again
        for a, b in zip(first, second):
            self.assertEqual(sorted(a), sorted(b))
        rss1, heap1 = self.memory()
        self.assert_healthy()
        print(f"\n  soak: after {2 * n} requests RSS {rss0 / 1024:.1f} MiB, heap in use "
              f"{heap0 / 1024:.1f} MiB; after {2 * n} more RSS {rss1 - rss0:+.0f} KiB, "
              f"heap {heap1 - heap0:+.0f} KiB")
        if sanitized(self.server.proc.pid):
            print("  (a sanitizer build: the memory bounds are not applied)")
            return
        self.assertGreater(heap0, 1024, "diffusiond_heap_in_use_bytes is missing")
        self.assertLessEqual(heap1 - heap0, 256,
                             f"heap in use grew {heap1 - heap0:.0f} KiB over {2 * n} requests")
        self.assertLessEqual(rss1 - rss0, max(0.02 * rss0, 4096),
                             f"RSS grew {rss1 - rss0} KiB over {2 * n} requests")


if __name__ == "__main__":
    unittest.main()
