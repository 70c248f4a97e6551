"""tools/bench_upload_livez.py <diffusiond> — /livez latency while img2img uploads are
read and decoded: three 12-megapixel JPEGs (4032x3024, as a phone takes them; 8.6 MB of
JSON each) sent at once to POST /sdapi/v1/img2img of a fresh server (bundled model,
--threads 1, --max-body-bytes 32MiB), /livez polled every 10 ms until all three are
answered; three rounds, each printing the worst and median /livez latency and when the
uploads were done.  Needs Pillow (the project's .venv)."""
import io, json, base64, subprocess, sys, threading, time, urllib.request
from PIL import Image
binary = sys.argv[1]
port = 18640
p = subprocess.Popen([binary, "serve", "--port", str(port), "--threads", "1", "--max-body-bytes", "32MiB"],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz"); break
        except Exception:
            time.sleep(0.2)
    img = Image.effect_noise((4032, 3024), 40).convert("RGB")
    buf = io.BytesIO(); img.save(buf, "JPEG", quality=85)
    body = json.dumps({"prompt": "x", "init_images": [base64.b64encode(buf.getvalue()).decode()],
                       "steps": 1, "denoising_strength": 1, "width": 64, "height": 64}).encode()
    def upload(out):
        t = time.monotonic()
        r = urllib.request.urlopen(urllib.request.Request(
            f"http://127.0.0.1:{port}/sdapi/v1/img2img", body, {"Content-Type": "application/json"}))
        r.read(); out.append(time.monotonic() - t)
    results = []
    for rnd in range(3):
        done = []
        ths = [threading.Thread(target=upload, args=(done,)) for _ in range(3)]
        for t in ths: t.start()
        lat = []
        while any(t.is_alive() for t in ths):
            t0 = time.monotonic()
            urllib.request.urlopen(f"http://127.0.0.1:{port}/livez").read()
            lat.append(time.monotonic() - t0)
            time.sleep(0.01)
        for t in ths: t.join()
        results.append((max(lat), sorted(lat)[len(lat) // 2], max(done)))
    for mx, med, up in results:
        print(f"livez max {mx*1e3:.0f} ms, median {med*1e3:.1f} ms; 3 uploads done in {up:.2f} s")
finally:
    p.terminate(); p.wait()
