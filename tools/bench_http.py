#!/usr/bin/env python3
"""tools/bench_http.py — the HTTP service's own costs, measured against a real
`diffusiond serve` on a loopback port (Python stdlib only).

1. Per-image overhead of HTTP + JSON + image encoding + base64, per output format
   (default 512×512, JPEG and PNG, b64_json, n=1, 1 step so the request is short;
   format "a1111": a PNG through POST /sdapi/v1/txt2img, AUTOMATIC1111's route).
   Each request is timed by the client from the first byte sent to the last byte of
   the response received (raw socket, the request pre-built), and the server reports
   its own metrics in the body.  Two figures per request:
     service = client_ms − (queue_ms + text_encode_ms + denoise_ms + vae_decode_ms)
               everything that is not generation compute: request parsing and
               validation, the hand-off to the scheduler and back, image encoding,
               base64 + JSON, and the loopback transfer;
     encode_path = image_encode_ms + (client_ms − total_ms)
               the encode + base64 + JSON + HTTP send/transfer path alone (the
               server's total_ms runs from the request's arrival to the end of image
               encoding, before the body is written).
   Medians (and p90) over --requests requests per format, after --warmup requests.
2. /livez latency while the worker is saturated: --load-clients threads keep
   generation requests (--load-size, --load-steps) in flight back to back while one
   thread probes GET /livez --probes times, --probe-interval-ms apart (so the
   probes span many U-Net steps, VAE decodes and image encodes), each on a new
   connection (as a load balancer does), timed from connect to the last byte.
   p50/p99/max.

Usage: python3 tools/bench_http.py [--bin build/server/diffusiond] [--model DIR]
         [--size 512] [--formats jpeg,png] [--requests 30] [--probes 2000] [--json OUT]
The server is started with --threads (default 1: the other core is left to the
encoder, the HTTP thread and this client on a 2-core machine)."""
import argparse
import json
import os
import socket
import statistics
import sys
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "http"))
import harness  # noqa: E402  (the integration tests' server launcher)


def percentile(xs, q):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def build_post(port, payload, path="/v1/images/generations"):
    body = json.dumps(payload).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode()
    return head + body


def timed_exchange(port, request):
    """(ms from the first byte sent to the last byte received, status, body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=600)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t0 = time.perf_counter_ns()
        s.sendall(request)
        r = harness.read_response(s)
        t1 = time.perf_counter_ns()
    finally:
        s.close()
    if r is None:
        raise RuntimeError("the server closed the connection without an answer")
    return (t1 - t0) / 1e6, r.status, r.body


def bench_overhead(srv, fmt, size, steps, n, warmup):
    prompt = "a lighthouse on a cliff at dusk, oil painting"
    if fmt == "a1111":  # PNG through AUTOMATIC1111's txt2img (parameters, info, infotexts)
        req = build_post(srv.port, {"prompt": prompt, "width": size, "height": size,
                                    "steps": steps, "batch_size": 1, "seed": 1},
                         "/sdapi/v1/txt2img")
    else:
        payload = {"prompt": prompt, "size": f"{size}x{size}", "steps": steps, "n": 1,
                   "seed": 1, "output_format": fmt, "response_format": "b64_json"}
        if fmt != "png":
            payload["output_compression"] = 90
        req = build_post(srv.port, payload)
    rows = []
    for i in range(warmup + n):
        client_ms, status, body = timed_exchange(srv.port, req)
        if status != 200:
            raise RuntimeError(f"{fmt}: HTTP {status}: {body[:300]!r}")
        doc = json.loads(body)
        m = doc["metrics"]
        gen = m["queue_ms"] + m["text_encode_ms"] + m["denoise_ms"] + m["vae_decode_ms"]
        if i >= warmup:
            rows.append({
                "client_ms": client_ms, "total_ms": m["total_ms"], "gen_ms": gen,
                "image_encode_ms": m["image_encode_ms"],
                "service_ms": client_ms - gen,
                "encode_path_ms": m["image_encode_ms"] + (client_ms - m["total_ms"]),
                "body_bytes": len(body),
                "image_bytes": len(doc["images"][0] if fmt == "a1111"
                                   else doc["data"][0]["b64_json"]) * 3 // 4,
            })
    return rows


def summarize(rows, key):
    xs = [r[key] for r in rows]
    return {"median": statistics.median(xs), "p90": percentile(xs, 0.9), "min": min(xs)}


def bench_livez(srv, probes, load_clients, load_size, load_steps, interval_s):
    stop = threading.Event()
    done = [0]
    errors = []
    load_req = build_post(srv.port, {"prompt": "keep the worker busy",
                                     "size": f"{load_size}x{load_size}", "steps": load_steps,
                                     "output_format": "jpeg"})

    def load():
        while not stop.is_set():
            try:
                _, status, body = timed_exchange(srv.port, load_req)
                if status != 200:
                    errors.append(f"load: HTTP {status} {body[:200]!r}")
                done[0] += 1
            except OSError as e:
                errors.append(f"load: {e}")

    threads = [threading.Thread(target=load, daemon=True) for _ in range(load_clients)]
    for t in threads:
        t.start()
    # Wait until the worker is busy (an active job in the scheduler).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        s = srv.metrics()
        if harness.metric(s, "diffusiond_active_jobs") >= 1:
            break
        time.sleep(0.05)
    probe = f"GET /livez HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\nConnection: close\r\n\r\n".encode()
    lat = []
    busy_samples = 0
    t_start = time.monotonic()
    for i in range(probes):
        t0 = time.perf_counter_ns()
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(probe)
        r = harness.read_response(s)
        t1 = time.perf_counter_ns()
        s.close()
        if r is None or r.status != 200:
            errors.append(f"livez: {r}")
            continue
        lat.append((t1 - t0) / 1e6)
        if i % 200 == 0:
            busy_samples += harness.metric(srv.metrics(), "diffusiond_active_jobs") >= 1
        time.sleep(interval_s)
    elapsed = time.monotonic() - t_start
    stop.set()
    for t in threads:
        t.join(timeout=600)
    return {
        "probes": len(lat), "p50_ms": percentile(lat, 0.5), "p99_ms": percentile(lat, 0.99),
        "max_ms": max(lat) if lat else float("nan"), "seconds": elapsed,
        "generations_during": done[0], "busy_checks": f"{busy_samples}/{(probes + 199) // 200}",
        "errors": errors[:5],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "server", "diffusiond"))
    ap.add_argument("--model", default=harness.TINY_MODEL)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--formats", default="jpeg,png")
    ap.add_argument("--requests", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--encoder-threads", type=int, default=2)
    ap.add_argument("--probes", type=int, default=2000)
    ap.add_argument("--probe-interval-ms", type=float, default=3.0,
                    help="pause between /livez probes, so they span many U-Net steps")
    ap.add_argument("--load-clients", type=int, default=2)
    ap.add_argument("--load-size", type=int, default=256)
    ap.add_argument("--load-steps", type=int, default=20)
    ap.add_argument("--json", help="write the results as JSON here")
    args = ap.parse_args()

    harness.BIN = args.bin
    srv = harness.Server(["--no-warmup", "--encoder-threads", str(args.encoder_threads),
                          "--max-width", str(max(args.size, 64)),
                          "--max-height", str(max(args.size, 64)),
                          "--queue-capacity", "256"],
                         model=args.model, threads=args.threads)
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "machine": f"{os.cpu_count()} CPUs, {platform_name()}",
               "command": " ".join(sys.argv), "size": args.size, "steps": args.steps,
               "overhead": {}, "livez": None}
    try:
        for fmt in args.formats.split(","):
            rows = bench_overhead(srv, fmt, args.size, args.steps, args.requests, args.warmup)
            res = {k: summarize(rows, k) for k in
                   ["client_ms", "gen_ms", "service_ms", "encode_path_ms", "image_encode_ms"]}
            res["image_bytes"] = statistics.median(r["image_bytes"] for r in rows)
            res["body_bytes"] = statistics.median(r["body_bytes"] for r in rows)
            results["overhead"][fmt] = res
            print(f"{fmt:5s} {args.size}x{args.size}: client {res['client_ms']['median']:8.2f} ms, "
                  f"generation {res['gen_ms']['median']:8.2f} ms | service overhead "
                  f"{res['service_ms']['median']:6.2f} ms (p90 {res['service_ms']['p90']:.2f}), "
                  f"encode+b64+JSON+HTTP {res['encode_path_ms']['median']:6.2f} ms "
                  f"(p90 {res['encode_path_ms']['p90']:.2f}; image encode "
                  f"{res['image_encode_ms']['median']:.2f}), image {res['image_bytes'] / 1024:.0f} KiB",
                  flush=True)
        if args.probes > 0:
            lv = bench_livez(srv, args.probes, args.load_clients, args.load_size, args.load_steps,
                             args.probe_interval_ms / 1e3)
            results["livez"] = lv
            print(f"/livez under load ({args.load_clients} clients of {args.load_size}x"
                  f"{args.load_size}/{args.load_steps} steps, {lv['generations_during']} done): "
                  f"p50 {lv['p50_ms']:.3f} ms, p99 {lv['p99_ms']:.3f} ms, max {lv['max_ms']:.3f} ms "
                  f"over {lv['probes']} probes in {lv['seconds']:.1f} s (worker busy at "
                  f"{lv['busy_checks']} checks)",
                  flush=True)
            if lv["errors"]:
                print("errors:", lv["errors"], file=sys.stderr)
    finally:
        code = srv.stop()
        srv.close()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0 if code == 0 else 1


def platform_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
