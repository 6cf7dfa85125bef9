"""deploy/k8s/*.yaml, validated offline. kubectl --dry-run=client needs an API server for its
discovery, so the schema check uses Debian's python3-kubernetes models (the API's OpenAPI
types): every key must be a field of its object (no typos), every value of its field's type,
required fields present. Those models are of Kubernetes 1.22; the one field used here that is
newer, a probe's `grpc` (GA in 1.27), is checked against its definition (port required, service
optional). Then what an operator relies on: Guaranteed QoS, probes on grpc.health.v1, /readyz
and /healthz, terminationGracePeriodSeconds above shutdown_grace_ms plus the preStop sleep,
ports that agree, and the embedded configuration accepted by `corepiped --check-config`."""
import copy
import glob
import os
import re
import subprocess
import tempfile
import unittest

import yaml
from kubernetes import client

from serverlib import COREPIPED

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
MANIFESTS = sorted(glob.glob(os.path.join(ROOT, "deploy", "k8s", "*.yaml")))

KINDS = {("v1", "ConfigMap"): "V1ConfigMap", ("v1", "Service"): "V1Service",
         ("apps/v1", "Deployment"): "V1Deployment", ("apps/v1", "DaemonSet"): "V1DaemonSet",
         ("apps/v1", "StatefulSet"): "V1StatefulSet",
         ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget",
         ("v1", "Secret"): "V1Secret"}
# Fields newer than the models: {model: {json name: {field: (type, required)}}}.
NEWER = {"V1Probe": {"grpc": {"port": (int, True), "service": (str, False)}}}
PRIMITIVE = {"str": str, "int": int, "bool": bool, "float": (int, float)}


def check(value, type_name, where, errors):
    """Walk @value against the OpenAPI type @type_name; append errors."""
    m = re.fullmatch(r"list\[(.+)\]", type_name)
    if m:
        if not isinstance(value, list):
            errors.append(f"{where}: expected a list")
            return
        for i, v in enumerate(value):
            check(v, m.group(1), f"{where}[{i}]", errors)
        return
    m = re.fullmatch(r"dict\(str, (.+)\)", type_name)
    if m:
        if not isinstance(value, dict):
            errors.append(f"{where}: expected a mapping")
            return
        for k, v in value.items():
            check(v, m.group(1), f"{where}.{k}", errors)
        return
    if type_name in PRIMITIVE:
        ok = isinstance(value, PRIMITIVE[type_name]) and not (
            type_name == "int" and isinstance(value, bool))
        if not ok:
            errors.append(f"{where}: expected {type_name}, got {value!r}")
        return
    if type_name == "object":  # IntOrString, Quantity, ...
        if not isinstance(value, (str, int, float)):
            errors.append(f"{where}: expected a string or number")
        return
    if type_name == "datetime":
        return
    cls = getattr(client, type_name)
    if not isinstance(value, dict):
        errors.append(f"{where}: expected a {type_name} mapping")
        return
    by_json = {j: a for a, j in cls.attribute_map.items()}
    for key, v in value.items():
        newer = NEWER.get(type_name, {}).get(key)
        if newer is not None:
            for f, (t, req) in newer.items():
                if req and f not in v:
                    errors.append(f"{where}.{key}: missing {f}")
            for f, fv in v.items():
                if f not in newer or not isinstance(fv, newer[f][0]):
                    errors.append(f"{where}.{key}.{f}: unknown or wrong type")
            continue
        if key not in by_json:
            errors.append(f"{where}: unknown field '{key}' in {type_name}")
            continue
        check(v, cls.openapi_types[by_json[key]], f"{where}.{key}", errors)


def required_ok(doc, model):
    """The models' own validation: constructing them raises on a missing required field."""
    stripped = yaml.safe_load(yaml.safe_dump(doc))

    def strip(o):
        if isinstance(o, dict):
            o.pop("grpc", None)  # newer than the models (checked above)
            for v in o.values():
                strip(v)
        elif isinstance(o, list):
            for v in o:
                strip(v)
    strip(stripped)
    client.ApiClient()._ApiClient__deserialize(stripped, model)


def load_all():
    docs = []
    for path in MANIFESTS:
        with open(path) as f:
            for d in yaml.safe_load_all(f):
                if d:
                    docs.append((os.path.basename(path), d))
    return docs


def pod_specs(docs):
    for name, d in docs:
        if d["kind"] in ("Deployment", "DaemonSet", "StatefulSet"):
            yield name, d, d["spec"]["template"]["spec"]


def config_of(docs, pod):
    cm = next(v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v)
    data = next(d["data"] for _, d in docs if d["kind"] == "ConfigMap"
                and d["metadata"]["name"] == cm)
    return yaml.safe_load(data["corepipe.yaml"]), data["corepipe.yaml"]


def etcd_files(conf):
    """{setting: path} of the registry.etcd_*_file settings of a configuration."""
    return {k: v for k, v in (conf.get("registry") or {}).items()
            if k.startswith("etcd_") and k.endswith("_file")}


def unresolved(docs, pod):
    """The registry.etcd_*_file settings of @pod's configuration whose file is not a key of a
    Secret (in @docs) mounted read-only at the file's directory."""
    conf, _ = config_of(docs, pod)
    vols = {v["name"]: v["secret"] for v in pod["volumes"] if "secret" in v}
    files = set()
    for c in pod["containers"]:
        for m in c["volumeMounts"]:
            sec = vols.get(m["name"])
            doc = sec and next((d for _, d in docs if d["kind"] == "Secret"
                                and d["metadata"]["name"] == sec["secretName"]), None)
            if doc is None or not m.get("readOnly"):
                continue
            keys = set(doc.get("data") or {}) | set(doc.get("stringData") or {})
            items = sec.get("items") or [{"key": k, "path": k} for k in keys]
            files |= {os.path.join(m["mountPath"], it["path"]) for it in items
                      if it["key"] in keys}
    return sorted(k for k, path in etcd_files(conf).items() if path not in files)


class ManifestTest(unittest.TestCase):
    docs = load_all()

    def test_there_are_manifests(self):
        kinds = {d["kind"] for _, d in self.docs}
        self.assertLessEqual({"ConfigMap", "Deployment", "DaemonSet", "Service"}, kinds)

    def test_schema(self):
        for name, d in self.docs:
            model = KINDS.get((d.get("apiVersion"), d.get("kind")))
            self.assertIsNotNone(model, f"{name}: unknown kind {d.get('kind')}")
            errors = []
            check(d, model, f"{name}:{d['kind']}", errors)
            self.assertEqual(errors, [])
            required_ok(d, model)

    def test_schema_check_catches_mistakes(self):
        """The checker is not a rubber stamp: a typo, a wrong type, a missing field."""
        dep = next(d for _, d, _ in pod_specs(self.docs) if d["kind"] == "Deployment")
        bad = yaml.safe_load(yaml.safe_dump(dep))
        c = bad["spec"]["template"]["spec"]["containers"][0]
        c["resource"] = c.pop("resources")
        c["ports"][0]["containerPort"] = "50051"
        c["readinessProbe"]["grpc"] = {"service": ""}
        errors = []
        check(bad, "V1Deployment", "bad", errors)
        self.assertEqual(len(errors), 3, errors)
        del bad["spec"]["template"]["spec"]["containers"][0]["name"]
        with self.assertRaises(ValueError):
            required_ok(bad, "V1Deployment")

    def test_guaranteed_qos_whole_cpus(self):
        for name, _, pod in pod_specs(self.docs):
            for c in pod["containers"]:
                req, lim = c["resources"]["requests"], c["resources"]["limits"]
                self.assertEqual(req, lim, f"{name}: requests == limits")
                self.assertIn("memory", lim)
                self.assertRegex(str(lim["cpu"]), r"^[1-9][0-9]*$",
                                 f"{name}: whole CPUs for the static CPU manager")

    def test_probes_and_grace(self):
        for name, _, pod in pod_specs(self.docs):
            conf, _ = config_of(self.docs, pod)
            grace_ms = conf["server"]["shutdown_grace_ms"]
            for c in pod["containers"]:
                ports = {p["name"]: p["containerPort"] for p in c["ports"]}
                self.assertEqual(ports["grpc"],
                                 int(conf["server"]["grpc_listen"].rsplit(":", 1)[1]))
                self.assertEqual(ports["metrics"],
                                 int(conf["server"]["metrics_listen"].rsplit(":", 1)[1]))
                self.assertEqual(c["readinessProbe"]["grpc"]["port"], ports["grpc"])
                self.assertEqual(c["livenessProbe"]["httpGet"]["path"], "/healthz")
                self.assertEqual(c["startupProbe"]["httpGet"]["path"], "/readyz")
                pre = c["lifecycle"]["preStop"]["exec"]["command"]
                sleep_s = int(pre[-1]) if pre[0].endswith("sleep") else 0
                self.assertGreater(pod["terminationGracePeriodSeconds"],
                                   grace_ms / 1000 + sleep_s, name)

    def test_services_target_the_named_ports(self):
        for name, d in self.docs:
            if d["kind"] != "Service":
                continue
            sel = d["spec"]["selector"]
            pods = [p for _, w, p in pod_specs(self.docs)
                    if all(w["spec"]["template"]["metadata"]["labels"].get(k) == v
                           for k, v in sel.items())]
            self.assertTrue(pods, f"{name}: the Service selects no workload")
            names = {p["name"] for c in pods[0]["containers"] for p in c["ports"]}
            for port in d["spec"]["ports"]:
                self.assertIn(port["targetPort"], names)

    def test_hugepages_variant(self):
        nic = [(n, p) for n, _, p in pod_specs(self.docs)
               if any(k.startswith("hugepages-") for c in p["containers"]
                      for k in c["resources"]["limits"])]
        self.assertTrue(nic, "a hugepages variant exists")
        for name, pod in nic:
            conf, _ = config_of(self.docs, pod)
            self.assertTrue(conf["dataplane"]["hugepages"])
            vols = {v["name"]: v for v in pod["volumes"]}
            mounts = {m["mountPath"]: m["name"] for c in pod["containers"]
                      for m in c["volumeMounts"]}
            self.assertEqual(vols[mounts["/dev/hugepages"]]["emptyDir"]["medium"], "HugePages")

    def test_fleet_variant(self):
        """N replicas behind a headless Service (client-side load balancing), sharing one
        registry in etcd, and a lame duck for health-checking clients."""
        fleet = [(n, w, p) for n, w, p in pod_specs(self.docs) if w["kind"] == "StatefulSet"]
        self.assertEqual(len(fleet), 1)
        name, sts, pod = fleet[0]
        self.assertGreaterEqual(sts["spec"]["replicas"], 3)
        svc = next(d for _, d in self.docs if d["kind"] == "Service"
                   and d["metadata"]["name"] == sts["spec"]["serviceName"])
        self.assertEqual(svc["spec"]["clusterIP"], "None")
        conf, _ = config_of(self.docs, pod)
        self.assertEqual(conf["registry"]["store"], "etcd")
        self.assertGreaterEqual(len(conf["registry"]["etcd_endpoint"].split(",")), 3)
        self.assertGreater(conf["server"]["shutdown_delay_ms"], 0)

    def test_fleet_etcd_tls_and_auth_from_a_secret(self):
        """The fleet reaches etcd over TLS with a client certificate and etcd auth: every file
        a registry.etcd_*_file setting names is a key of a Secret mounted read-only there."""
        fleet = [p for _, w, p in pod_specs(self.docs) if w["kind"] == "StatefulSet"]
        conf, _ = config_of(self.docs, fleet[0])
        self.assertEqual(set(etcd_files(conf)), {"etcd_ca_file", "etcd_cert_file",
                                                 "etcd_key_file", "etcd_password_file"})
        self.assertTrue(conf["registry"]["etcd_user"])
        for name, _, pod in pod_specs(self.docs):
            self.assertEqual(unresolved(self.docs, pod), [], name)

    def test_secret_check_catches_a_missing_key_or_a_writable_mount(self):
        """The check above is not a rubber stamp."""
        docs = copy.deepcopy(self.docs)
        secret = next(d for _, d in docs if d["kind"] == "Secret")
        del secret["stringData"]["client.key"]
        pod = next(p for _, w, p in pod_specs(docs) if w["kind"] == "StatefulSet")
        self.assertEqual(unresolved(docs, pod), ["etcd_key_file"])
        for m in pod["containers"][0]["volumeMounts"]:
            m.pop("readOnly", None)
        self.assertEqual(len(unresolved(docs, pod)), 4, unresolved(docs, pod))

    def test_embedded_configs_pass_check_config(self):
        for name, _, pod in pod_specs(self.docs):
            _, text = config_of(self.docs, pod)
            with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
                f.write(text)
                f.flush()
                env = {k: v for k, v in os.environ.items() if not k.startswith("COREPIPE_")}
                r = subprocess.run([COREPIPED, "--check-config", f.name], env=env,
                                   capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, f"{name}: {r.stderr}")


if __name__ == "__main__":
    unittest.main()
