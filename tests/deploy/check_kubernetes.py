"""tests/deploy/check_kubernetes.py <source root> — what the Kubernetes schemas cannot
check in docker/kubernetes/ (kubernetes-validate checks the schemas; this checks the
promises of docs/deploy.md and that the pieces fit each other and the code):

- probes: startup and readiness on /readyz, liveness on /livez, on the named port
  that the container exposes and the Service targets;
- stop budget: terminationGracePeriodSeconds > preStop sleep + DIFFUSIOND_DRAIN_GRACE_S
  + the longest generation (the pod annotation diffusiond/longest-generation-seconds);
- security: non-root as the images' USER uid, read-only root, no privilege escalation,
  capabilities dropped, a writable /tmp;
- GPU variant: nvidia.com/gpu 1 in requests and limits, /models read-only;
- Service, PodDisruptionBudget and HPA select / target the Deployment;
- the HPA's metric is served by the prometheus-adapter rule and is a metric the server
  exports (server/metrics.c).
Prints one line per check; exit 1 on the first failure.
"""
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(sys.argv[1]).resolve()
K8S = ROOT / "docker" / "kubernetes"


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def ok(msg):
    print(f"ok: {msg}")


def load(path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    if len(docs) != 1:
        fail(f"{path}: one resource per file, found {len(docs)}")
    return docs[0]


def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def image_uid():
    uids = set()
    for name in ("Dockerfile", "Dockerfile.cpu"):
        m = re.search(r"^USER (\d+):(\d+)$", (ROOT / "docker" / name).read_text(), re.M)
        if not m:
            fail(f"docker/{name}: a numeric USER uid:gid")
        uids.add(int(m.group(1)))
    if len(uids) != 1:
        fail(f"the two images run as different uids: {uids}")
    return uids.pop()


def check_probes(name, c):
    port_names = {p["name"]: p["containerPort"] for p in c["ports"]}
    if port_names.get("http") != 8080:
        fail(f"{name}: container port 'http' is 8080")
    want = {"startupProbe": "/readyz", "readinessProbe": "/readyz", "livenessProbe": "/livez"}
    for probe, path in want.items():
        p = c.get(probe)
        if not p or p["httpGet"]["path"] != path or p["httpGet"]["port"] != "http":
            fail(f"{name}: {probe} GET {path} on port http")
        if p.get("timeoutSeconds", 1) < 2:
            fail(f"{name}: {probe} timeout >= 2 s")
    s = c["startupProbe"]
    budget = s["periodSeconds"] * s["failureThreshold"]
    if budget < 60:
        fail(f"{name}: startup probe allows {budget} s to load the model, want >= 60")
    ok(f"{name}: probes (startup /readyz {budget} s, liveness /livez, readiness /readyz)")


def check_stop_budget(name, spec, c, annotations):
    grace = spec["terminationGracePeriodSeconds"]
    env = env_of(c)
    drain = int(env.get("DIFFUSIOND_DRAIN_GRACE_S") or 30)
    longest = int(annotations["diffusiond/longest-generation-seconds"])
    cmd = c["lifecycle"]["preStop"]["exec"]["command"]
    if cmd[0] != "sleep":
        fail(f"{name}: preStop is a sleep")
    pre = int(cmd[1])
    if grace <= pre + drain + longest:
        fail(f"{name}: terminationGracePeriodSeconds {grace} <= preStop {pre} + drain {drain}"
             f" + longest generation {longest}")
    ok(f"{name}: stop budget {grace} s > preStop {pre} + drain {drain} + generation {longest}")


def check_security(name, spec, c, uid):
    pod = spec["securityContext"]
    if not pod.get("runAsNonRoot") or pod.get("runAsUser") != uid:
        fail(f"{name}: runAsNonRoot with runAsUser {uid} (the images' USER)")
    sc = c["securityContext"]
    if not sc.get("readOnlyRootFilesystem") or sc.get("allowPrivilegeEscalation") is not False:
        fail(f"{name}: read-only root file system, no privilege escalation")
    if sc.get("capabilities", {}).get("drop") != ["ALL"]:
        fail(f"{name}: capabilities drop ALL")
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    if "/tmp" not in mounts:
        fail(f"{name}: a writable /tmp (emptyDir) beside the read-only root")
    if "/models" in mounts and not mounts["/models"].get("readOnly"):
        fail(f"{name}: /models mounted read-only")
    ok(f"{name}: non-root uid {uid}, read-only root, caps dropped, /tmp writable")


def check_deployment(variant, uid):
    d = load(K8S / variant / "deployment.yaml")
    name = f"{variant}/deployment"
    if d["kind"] != "Deployment" or d["metadata"]["name"] != "diffusiond":
        fail(f"{name}: Deployment diffusiond")
    tmpl = d["spec"]["template"]
    spec = tmpl["spec"]
    (c,) = spec["containers"]
    if d["spec"]["selector"]["matchLabels"].items() - tmpl["metadata"]["labels"].items():
        fail(f"{name}: selector matches the pod labels")
    check_probes(name, c)
    check_stop_budget(name, spec, c, tmpl["metadata"]["annotations"])
    check_security(name, spec, c, uid)
    res = c["resources"]
    gpus = (res.get("limits", {}).get("nvidia.com/gpu"), res.get("requests", {}).get("nvidia.com/gpu"))
    if variant == "gpu":
        if gpus != (1, 1):
            fail(f"{name}: nvidia.com/gpu 1 in limits and requests, got {gpus}")
        if "/models" not in {m["mountPath"] for m in c["volumeMounts"]}:
            fail(f"{name}: models mounted at /models")
        ok(f"{name}: one GPU per pod, /models read-only")
    elif gpus != (None, None):
        fail(f"{name}: the CPU variant asks for no GPU")
    if env_of(c).get("DIFFUSIOND_HOST") != "0.0.0.0":
        fail(f"{name}: DIFFUSIOND_HOST=0.0.0.0")
    return d


def main():
    uid = image_uid()
    deps = [check_deployment(v, uid) for v in ("cpu", "gpu")]
    labels = deps[0]["spec"]["template"]["metadata"]["labels"]

    svc = load(K8S / "common" / "service.yaml")
    if svc["spec"]["selector"].items() - labels.items():
        fail("service selects the Deployment's pods")
    if svc["spec"]["ports"][0]["targetPort"] != "http":
        fail("service targets the named port http")
    pdb = load(K8S / "common" / "pdb.yaml")
    if pdb["spec"]["selector"]["matchLabels"].items() - labels.items():
        fail("PodDisruptionBudget selects the Deployment's pods")
    ok("service and PodDisruptionBudget select the pods")

    hpa = load(K8S / "common" / "hpa.yaml")
    ref = hpa["spec"]["scaleTargetRef"]
    if (ref["kind"], ref["name"]) != ("Deployment", "diffusiond"):
        fail("HPA scales Deployment diffusiond")
    (metric,) = hpa["spec"]["metrics"]
    mname = metric["pods"]["metric"]["name"]
    adapter = load(K8S / "common" / "prometheus-adapter.yaml")
    rules = yaml.safe_load(adapter["data"]["config.yaml"])["rules"]
    served = {r["name"]["as"] for r in rules}
    if mname not in served:
        fail(f"HPA metric {mname} is served by a prometheus-adapter rule ({served})")
    for r in rules:
        if not r["seriesQuery"].startswith(r["name"]["as"] + "{"):
            fail(f"adapter rule {r['name']['as']} queries its own series")
    metrics_c = (ROOT / "server" / "metrics.c").read_text() if (ROOT / "server" / "metrics.c").exists() else ""
    if metrics_c and f'"{mname}"' not in metrics_c:
        fail(f"{mname} is not a metric of server/metrics.c")
    ok(f"HPA on {mname} (prometheus-adapter rule, exported by server/metrics.c"
       f"{'' if metrics_c else ': not built yet, unchecked'})")


main()
