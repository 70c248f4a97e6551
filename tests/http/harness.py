"""tests/http/harness.py — start the real `diffusiond serve` on a loopback port and talk
HTTP to it, for the integration suites in this folder (stdlib only).

Environment (tests/CMakeLists.txt sets both for ctest):
  DIFFUSIOND_BIN   the diffusiond binary (default: <root>/build/server/diffusiond)
  DIFFUSIOND_ROOT  the repository root (default: two folders up from here)

A server is started with `--port 0` and found by the line it logs with its port;
its stdout/stderr go to a log file kept for the failure message.  Missing binary,
a server that does not come up, or one that exits early is a test ERROR, never a
skip: the suites must fail where the service is broken or absent.
"""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

ROOT = os.environ.get("DIFFUSIOND_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("DIFFUSIOND_BIN") or os.path.join(ROOT, "build", "server", "diffusiond")
TINY_MODEL = os.path.join(ROOT, "tests", "fixtures", "sd", "sd1-tiny", "diffusers")
TINY_NAME = "sd1-tiny"  # the model id: for <name>/diffusers the parent folder's name (docs/serve.md)

# cmd_serve logs "listening on http://127.0.0.1:43521 (epoll, …)" once bound.
PORT_RE = re.compile(r"listening on https?://(?:[^\s:/]+|\[[0-9a-fA-F:]+\]):(\d{2,5})\b()")

START_TIMEOUT_S = float(os.environ.get("DIFFUSIOND_TEST_START_TIMEOUT", "60"))


class ServerError(AssertionError):
    pass


class Server:
    """One `diffusiond serve` process.

    args: extra command-line flags; env: extra environment variables (merged over a
    copy of os.environ with every DIFFUSIOND_* variable removed, so the caller's shell
    cannot change a test)."""

    def __init__(self, args=(), env=None, model=TINY_MODEL, threads=1, wait_ready=True):
        if not os.access(BIN, os.X_OK):
            raise ServerError(f"diffusiond binary not found or not executable: {BIN} "
                              "(set DIFFUSIOND_BIN)")
        self.log_file = tempfile.NamedTemporaryFile(
            prefix="diffusiond-serve-", suffix=".log", delete=False)
        cmd = [BIN, "serve", "--host", "127.0.0.1", "--port", "0", "--model", model,
               "--threads", str(threads)] + list(args)
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("DIFFUSIOND_")}
        full_env.update(env or {})
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log_file,
                                     stderr=subprocess.STDOUT, env=full_env)
        self.log_file.close()  # the child has its own descriptor
        self.port = None
        self.returncode = None
        try:
            self._wait_port()
            if wait_ready:
                self.wait_ready()
        except BaseException:
            self.kill()  # the ServerError message already holds the log's tail
            try:
                os.unlink(self.log_file.name)
            except OSError:
                pass
            raise

    # --- life cycle ------------------------------------------------------------------

    def log(self):
        with open(self.log_file.name, "r", errors="replace") as f:
            return f.read()

    def _fail(self, why):
        raise ServerError(f"{why}\ncommand: {' '.join(self.cmd)}\n--- server log ---\n"
                          f"{self.log()[-6000:]}")

    def _wait_port(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for line in self.log().splitlines():
                if "listening on" not in line.lower():
                    continue
                m = PORT_RE.search(line)
                if m and int(m.group(1) or m.group(2)) > 0:
                    self.port = int(m.group(1) or m.group(2))
                    return
            if self.proc.poll() is not None:
                self._fail(f"diffusiond serve exited ({self.proc.returncode}) before listening")
            time.sleep(0.005)
        self._fail(f"no 'listening … :<port>' line within {START_TIMEOUT_S:.0f} s")

    def wait_ready(self, timeout=START_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._fail(f"diffusiond serve exited ({self.proc.returncode}) before ready")
            try:
                last = self.request("GET", "/readyz", timeout=5)
                if last.status == 200:
                    return
            except OSError as e:
                last = e
            time.sleep(0.05)
        self._fail(f"/readyz not 200 within {timeout:.0f} s (last: {last})")

    def signal(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)

    def wait(self, timeout=60):
        self.returncode = self.proc.wait(timeout=timeout)
        return self.returncode

    def stop(self, timeout=60):
        """SIGTERM and wait; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self._fail(f"diffusiond serve did not exit within {timeout} s of SIGTERM")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.returncode = self.proc.returncode

    def close(self):
        """Stops the server (if running) and removes its log."""
        try:
            if self.proc.poll() is None:
                self.stop()
        finally:
            self.kill()
            try:
                os.unlink(self.log_file.name)
            except OSError:
                pass

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}"

    # --- HTTP ------------------------------------------------------------------------

    def request(self, method, path, body=None, headers=None, timeout=120):
        """One request on a new connection.  body: bytes, str, or a JSON-able object
        (then Content-Type application/json is set unless given).  Returns a Response."""
        hdrs = dict(headers or {})
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode("utf-8")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            return Response(r.status, r.getheaders(), r.read())
        finally:
            conn.close()

    def generate(self, payload, headers=None, timeout=300):
        return self.request("POST", "/v1/images/generations", payload, headers, timeout)

    def steps_for(self, seconds, size=128, images=1, lo=4, hi=1000):
        """Denoising steps that keep the worker busy about `seconds` with `images`
        images of size×size in flight together, measured on this server (one
        calibration request of n=images, 4 steps): the load tests then take about the
        same wall time on a fast machine, a GPU, or a sanitizer build."""
        r = self.generate({"prompt": "calibration", "size": f"{size}x{size}", "steps": 4,
                           "n": images, "seed": 1})
        if r.status != 200:
            raise ServerError(f"calibration request failed: {r.status} {r.body[:300]!r}")
        per_step_ms = max(r.json()["metrics"]["denoise_ms"] / 4, 1e-3)
        return int(min(max(seconds * 1000 / per_step_ms, lo), hi))

    def raw(self, data, timeout=30, read_until_close=True):
        """Sends raw bytes on a new socket and returns the parsed response (or None
        when the server closed without answering)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(data)
            return read_response(s, read_until_close)

    def metrics(self, headers=None):
        r = self.request("GET", "/metrics", headers=headers)
        if r.status != 200:
            raise ServerError(f"/metrics answered {r.status}: {r.body[:300]!r}")
        return parse_metrics(r.text)


class ServerCase(unittest.TestCase):
    """A test class with its own server (ARGS / ENV), stopped with SIGTERM after its
    tests: an exit code other than 0 fails the class."""
    ARGS = ()
    ENV = None

    @classmethod
    def setUpClass(cls):
        cls.server = Server(cls.ARGS, env=cls.ENV)

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        cls.server.close()
        if code != 0:
            raise AssertionError(f"diffusiond serve exited {code} after SIGTERM")


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.header_list = headers
        self.headers = {}
        for k, v in headers:
            self.headers.setdefault(k.lower(), v)
        self.body = body

    def header(self, name):
        return self.headers.get(name.lower())

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} {self.body[:200]!r}>"


def read_response(sock, read_until_close=True):
    """Reads one HTTP/1.1 response from sock (Content-Length or until close)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            chunk = b""
        if not chunk:
            return None if not buf else _parse_head_only(buf)
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = []
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers.append((k.strip(), v.strip()))
    length = None
    for k, v in headers:
        if k.lower() == "content-length":
            length = int(v)
    while length is not None and len(rest) < length:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        rest += chunk
    return Response(status, headers, rest[:length] if length is not None else rest)


def _parse_head_only(buf):
    lines = buf.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return None
    return Response(status, [], b"")


# --- Prometheus text -------------------------------------------------------------------

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """{(name, frozenset(labels.items())): value} for every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            raise ServerError(f"unparsable metrics line: {line!r}")
        labels = frozenset(LABEL_RE.findall(m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def metric(samples, name, **labels):
    """Sum of the samples of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def has_family(samples, name):
    return any(n == name for (n, _) in samples)


# --- helpers ---------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_threads(fn, args_list, timeout=None):
    """Runs fn(*args) for each args in threads; returns results in order (exceptions
    are returned, not raised).  With a timeout (seconds, for each join), a thread
    still running after it is an AssertionError."""
    results = [None] * len(args_list)

    def work(i, a):
        try:
            results[i] = fn(*a)
        except BaseException as e:  # reported by the caller
            results[i] = e

    threads = [threading.Thread(target=work, args=(i, a)) for i, a in enumerate(args_list)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    if any(t.is_alive() for t in threads):
        raise AssertionError("a thread hung")
    return results


def image_kind(data):
    """'png', 'jpeg', 'webp' or None, from the magic bytes."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None
