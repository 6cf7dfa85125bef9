"""corepiped --check-config and --print-config, run as real processes: exit codes, errors with
file:line, every pipeline compiled, and the precedence defaults < file < environment < flags."""
import hashlib
import json
import os
import subprocess
import tempfile
import unittest

from serverlib import COREPIPED, START_TIMEOUT_S, Server


def run(args, env=None, timeout=30):
    e = {k: v for k, v in os.environ.items() if not k.startswith("COREPIPE_")}
    e.update(env or {})
    return subprocess.run([COREPIPED, *args], env=e, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


class ConfigCliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="corepipe-cfg-")

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, text):
        path = os.path.join(self.tmp.name, "c.yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_check_config_valid(self):
        path = self.write("pipelines:\n  a:\n    - type: resample\n      params: { rate: '8000' }\n")
        r = run(["--check-config", path])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("valid (1 pipelines)", r.stdout)

    def test_check_config_unknown_key_names_line(self):
        path = self.write("server:\n  grpc_listen: 'x:1'\n  colour: blue\n")
        r = run(["--check-config", path])
        self.assertEqual(r.returncode, 2)
        self.assertIn(f"{path}:3:3: server: unknown key 'colour'", r.stderr)

    def test_check_config_compiles_every_pipeline(self):
        path = self.write("pipelines:\n  ok:\n    - type: passthrough\n"
                          "  bad:\n    - type: gain\n      params: { db: loud }\n")
        r = run(["--check-config", path])
        self.assertEqual(r.returncode, 2)
        self.assertIn("pipeline 'bad': node 0 (gain): param db: not a number: 'loud'", r.stderr)

    def test_check_config_bad_environment(self):
        path = self.write("")
        r = run(["--check-config", path], env={"COREPIPE_LIMITS_MAX_NODES": "0"})
        self.assertEqual(r.returncode, 2)
        self.assertIn("environment COREPIPE_LIMITS_MAX_NODES: 0 out of range", r.stderr)

    def test_precedence_defaults_file_env_flags(self):
        path = self.write("server: { grpc_listen: '127.0.0.1:1111' }\n"
                          "limits: { max_nodes: 5 }\n")

        def listen(args, env=None):
            r = run(["--config", path, "--print-config", *args], env=env)
            self.assertEqual(r.returncode, 0, r.stderr)
            lines = dict(l.strip().split(": ", 1) for l in r.stdout.splitlines()
                         if ": " in l and not l.startswith("#"))
            return lines["grpc_listen"].strip('"'), lines["max_nodes"], lines["max_timeout_ms"]

        env = {"COREPIPE_SERVER_GRPC_LISTEN": "127.0.0.1:2222"}
        self.assertEqual(listen([]), ("127.0.0.1:1111", "5", "300000"))  # file over default
        self.assertEqual(listen([], env), ("127.0.0.1:2222", "5", "300000"))  # env over file
        self.assertEqual(listen(["-g", "127.0.0.1:3333"], env),
                         ("127.0.0.1:3333", "5", "300000"))  # flag over env

    def test_listen_ports_over_65535_refused(self):
        """Finding 17: 117537 was wrapped to 52001 by getaddrinfo; now every way of setting
        a listen address refuses it, before anything starts (exit 2)."""
        path = self.write("logging: { level: info }\n")
        for args in (["-g", "127.0.0.1:117537", "--print-config"],
                     ["-g", "127.0.0.1:117537"],
                     ["-g", "[::1]:65536"],
                     ["-g", "localhost:grpc"]):
            r = run(["--config", path, *args])
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertIn("server.grpc_listen", r.stderr)
        r = run(["--config", path, "-g", "127.0.0.1:117537"])
        self.assertIn("port 117537 out of range [0, 65535]", r.stderr)
        bad = self.write("server: { grpc_listen: '127.0.0.1:117537' }\n")
        r = run(["--check-config", bad])
        self.assertEqual(r.returncode, 2)
        self.assertIn(f"{bad}:1:24: server.grpc_listen:", r.stderr)
        path = self.write("logging: { level: info }\n")
        r = run(["--config", path, "--print-config"],
                env={"COREPIPE_SERVER_METRICS_LISTEN": "127.0.0.1:99999"})
        self.assertEqual(r.returncode, 2)
        self.assertIn("environment COREPIPE_SERVER_METRICS_LISTEN", r.stderr)
        # 0 (pick a free port) and 65535 are fine.
        r = run(["--config", path, "-g", "127.0.0.1:65535", "--print-config"])
        self.assertEqual(r.returncode, 0, r.stderr)


    def test_check_config_reports_every_error(self):
        path = self.write("server:\n  colour: blue\n  max_connections: 0\n"
                          "limits: { max_nodes: many }\nflavour: x\n")
        r = run(["--check-config", path])
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr.splitlines(), [
            f"{path}:2:3: server: unknown key 'colour'",
            f"{path}:3:20: server.max_connections: 0 out of range [1, 1000000]",
            f"{path}:4:22: limits.max_nodes: expected a non-negative integer, got 'many'",
            f"{path}:5:1: unknown section 'flavour' (expected server, dataplane, limits, auth, "
            "tls, logging, registry, pipelines)"])

    def test_unknown_environment_variable_is_an_error(self):
        path = self.write("")
        r = run(["--check-config", path], env={"COREPIPE_LIMITS_MAX_NODE": "3"})
        self.assertEqual(r.returncode, 2)
        self.assertIn("environment COREPIPE_LIMITS_MAX_NODE: unknown variable (did you mean "
                      "COREPIPE_LIMITS_MAX_NODES?)", r.stderr)
        # The server refuses to start too, before touching the EAL.
        r = run(["--config", path, "--grpc-listen", "127.0.0.1:0"],
                env={"COREPIPE_SERVER_GRPC_LISTN": "x"})
        self.assertEqual(r.returncode, 2)
        self.assertIn("COREPIPE_SERVER_GRPC_LISTN: unknown variable (did you mean "
                      "COREPIPE_SERVER_GRPC_LISTEN?)", r.stderr)

    def test_print_config_with_token_digests_passes_check_config(self):
        digest = hashlib.sha256(b"s3cret").hexdigest()
        tokens = os.path.join(self.tmp.name, "tokens")
        with open(tokens, "w") as f:
            f.write(f"filed:{hashlib.sha256(b'other').hexdigest()}:execute\n")
        path = self.write(
            "auth:\n  enabled: true\n  token_file: " + tokens + "\n  tokens:\n"
            f"    - {{ name: ops, sha256: '{digest}', permission: admin }}\n"
            "dataplane: { eal_args: ['--vdev=net_null0'] }\n"
            "logging: { access_log: errors }\n"
            "pipelines:\n  g:\n    - { type: gain, params: { db: '-6' } }\n")
        r = run(["--config", path, "--print-config"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(digest, r.stdout)
        printed = self.write(r.stdout)
        c = run(["--check-config", printed])
        self.assertEqual(c.returncode, 0, c.stderr + r.stdout)
        again = run(["--config", printed, "--print-config"])
        # The same configuration, printed twice (only the header names another file).
        self.assertEqual(again.stdout.splitlines()[1:], r.stdout.splitlines()[1:])

    def test_config_search_order_named_in_serving_line(self):
        env_cfg = self.write("pipelines:\n  from_env:\n    - type: passthrough\n")
        cwd = os.path.join(self.tmp.name, "cwd")
        os.makedirs(os.path.join(cwd, "config"))
        with open(os.path.join(cwd, "config", "corepipe.yaml"), "w") as f:
            f.write("pipelines:\n  from_cwd:\n    - type: passthrough\n")

        def serving(env, args=(), where=cwd):
            p = subprocess.Popen([COREPIPED, "--grpc-listen", "127.0.0.1:0", "--workers", "1",
                                  *args], cwd=where, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 env={**{k: v for k, v in os.environ.items()
                                         if not k.startswith("COREPIPE_")},
                                      "COREPIPE_SERVER_METRICS_LISTEN": "127.0.0.1:0", **env})
            try:
                for raw in p.stderr:
                    o = json.loads(raw)
                    if o.get("msg") == "serving":
                        return o["config"]
                return None
            finally:
                p.terminate()
                p.wait(START_TIMEOUT_S)
                p.stderr.close()

        flag_cfg = self.write("")
        self.assertEqual(serving({"COREPIPE_CONFIG": env_cfg}, ["--config", flag_cfg]),
                         flag_cfg)
        self.assertEqual(serving({"COREPIPE_CONFIG": env_cfg}), env_cfg)
        if not os.path.exists("/etc/corepipe/corepipe.yaml"):  # else the installed one wins
            self.assertEqual(serving({}), "config/corepipe.yaml")
            self.assertEqual(serving({}, where=self.tmp.name), "built-in defaults")
        # A file named explicitly must exist: no silent fallback.
        r = run(["--print-config"], env={"COREPIPE_CONFIG": "/nonexistent.yaml"})
        self.assertEqual(r.returncode, 2)
        self.assertIn("/nonexistent.yaml", r.stderr)


if __name__ == "__main__":
    unittest.main()
