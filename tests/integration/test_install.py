"""make install into a DESTDIR, as a packager runs it: the files and their modes, the shared
library's soname chain and pkg-config file (a program built and run against the staged copy),
the default configuration kept on reinstall, the man page in step with --help, and the
runtime dependency set of scripts/deps.sh covering what the staged binary links."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from serverlib import COREPIPED

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# The variant under test (build/<variant>/corepiped): install what the tests run.
VARIANT = os.path.basename(os.path.dirname(os.path.abspath(COREPIPED)))
# Sanitizer builds (make asan/tsan) also link the sanitizer runtimes; a release build does not.
SANITIZER_LIBS = re.compile(r"lib(asan|ubsan|tsan|lsan)[.0-9so]*$")


def make(*args, timeout=600):
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return subprocess.run(["make", "--no-print-directory", "-C", ROOT, f"VARIANT={VARIANT}",
                           *args], env=env, capture_output=True, text=True, timeout=timeout)


def help_options(text):
    """Long options of a usage text: --config, --check-config, ..."""
    return set(re.findall(r"(?<![\w-])--([a-z][a-z-]+)", text))


class InstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="corepipe-install-")
        cls.dest = cls.tmp.name
        r = make("install", f"DESTDIR={cls.dest}", "PREFIX=/usr")
        assert r.returncode == 0, r.stdout + r.stderr

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def p(self, path):
        return self.dest + path

    def test_files_and_modes(self):
        want = {
            "/usr/sbin/corepiped": 0o755,
            "/etc/corepipe/corepipe.yaml": 0o644,
            "/usr/lib/systemd/system/corepiped.service": 0o644,
            "/usr/lib/sysusers.d/corepipe.conf": 0o644,
            "/usr/share/man/man8/corepiped.8": 0o644,
            "/usr/include/corepipe_udp.h": 0o644,
            "/usr/lib/libcorepipe-udp.so.1.0.0": 0o644,
            "/usr/lib/libcorepipe-udp.a": 0o644,
            "/usr/lib/pkgconfig/corepipe-udp.pc": 0o644,
        }
        for path, mode in want.items():
            st = os.stat(self.p(path))
            self.assertEqual(st.st_mode & 0o777, mode, path)
        with open(self.p("/etc/corepipe/corepipe.yaml")) as a, \
                open(os.path.join(ROOT, "config/corepipe.yaml")) as b:
            self.assertEqual(a.read(), b.read())
        unit = open(self.p("/usr/lib/systemd/system/corepiped.service")).read()
        self.assertIn("ExecStart=/usr/sbin/corepiped\n", unit)
        self.assertIn("COREPIPE_CONFIG=/etc/corepipe/corepipe.yaml", unit)
        self.assertEqual(re.findall(r"@[A-Z_]+@", unit), [])  # every placeholder filled in

    def test_soname_chain_and_pkg_config(self):
        lib = self.p("/usr/lib")
        self.assertEqual(os.readlink(f"{lib}/libcorepipe-udp.so"), "libcorepipe-udp.so.1")
        self.assertEqual(os.readlink(f"{lib}/libcorepipe-udp.so.1"),
                         "libcorepipe-udp.so.1.0.0")
        dyn = subprocess.run(["readelf", "-d", f"{lib}/libcorepipe-udp.so.1.0.0"],
                             capture_output=True, text=True, check=True).stdout
        self.assertIn("Library soname: [libcorepipe-udp.so.1]", dyn)
        needed = [n for n in re.findall(r"Shared library: \[(\S+)\]", dyn)
                  if not SANITIZER_LIBS.match(n)]
        self.assertEqual(needed, ["libc.so.6"])
        env = dict(os.environ, PKG_CONFIG_PATH=f"{lib}/pkgconfig",
                   PKG_CONFIG_SYSROOT_DIR=self.dest)
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "corepipe-udp"], env=env,
                               capture_output=True, text=True, check=True).stdout.split()
        self.assertIn(f"-L{lib}", flags)
        self.assertIn("-lcorepipe-udp", flags)
        # A user's program, built with those flags against the staged header and library.
        src = os.path.join(self.dest, "prog.c")
        with open(src, "w") as f:
            f.write('#include <corepipe_udp.h>\n#include <stdio.h>\n'
                    'int main(void) { puts(corepipe_udp_status_name(5)); return 0; }\n')
        prog = os.path.join(self.dest, "prog")
        # Against a sanitizer build of the library, the program needs the same runtime.
        san = ["-fsanitize=address,undefined"] if VARIANT == "asan" else []
        subprocess.run(["cc", *san, "-o", prog, src, f"-I{self.dest}/usr/include", *flags],
                       check=True)
        out = subprocess.run([prog], env=dict(os.environ, LD_LIBRARY_PATH=lib),
                             capture_output=True, text=True, check=True).stdout
        self.assertEqual(out.strip(), "NOT_FOUND")
        needed = subprocess.run(["readelf", "-d", prog], capture_output=True, text=True,
                                check=True).stdout
        self.assertIn("[libcorepipe-udp.so.1]", needed)  # linked by soname, not the dev link

    def test_staged_server_runs_version(self):
        r = subprocess.run([self.p("/usr/sbin/corepiped"), "--version"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(ROOT, "VERSION")) as f:
            self.assertEqual(r.stdout.splitlines()[0], "corepiped " + f.read().strip())
        self.assertIn("default config: /etc/corepipe/corepipe.yaml", r.stdout)

    def test_reinstall_keeps_an_edited_config(self):
        conf = self.p("/etc/corepipe/corepipe.yaml")
        with open(conf, "a") as f:
            f.write("# edited by the operator\n")
        r = make("install-server", f"DESTDIR={self.dest}", "PREFIX=/usr")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("exists; not replaced", r.stdout)
        with open(conf) as f:
            self.assertTrue(f.read().endswith("# edited by the operator\n"))

    def test_man_page_matches_help(self):
        usage = subprocess.run([COREPIPED, "--help"], capture_output=True, text=True,
                               timeout=30).stdout
        with open(os.path.join(ROOT, "man", "corepiped.8")) as f:
            roff = f.read()
        options = roff.split(".SH OPTIONS", 1)[1].split("\n.SH ", 1)[0]
        man = set(re.findall(r"\\-\\-([a-z]+(?:\\-[a-z]+)*)", options))
        man = {m.replace("\\-", "-") for m in man}
        self.assertEqual(help_options(usage) - {"no-huge", "no-pci", "no-shconf", "vdev"},
                         man - {"no-huge", "no-pci", "no-shconf", "vdev"})
        # Short options too: -c -g -w -l -L -V -h.
        short_help = set(re.findall(r"^\s+-([a-zA-Z]),", usage, re.M))
        short_man = set(re.findall(r'\.BR \\-([a-zA-Z]) ",', options))
        self.assertEqual(short_help, short_man)
        # Every documented environment variable is one corepiped accepts.
        self.assertIn("COREPIPE_CONFIG", roff)

    def test_run_set_covers_what_the_binary_links(self):
        """scripts/deps.sh's run set against dpkg-shlibdeps (what the .deb's Depends are
        computed from) on the staged binary."""
        run_set = set(subprocess.run([os.path.join(ROOT, "scripts/deps.sh"), "--list", "run"],
                                     capture_output=True, text=True,
                                     check=True).stdout.split())
        work = os.path.join(self.dest, "shlibs")
        os.makedirs(os.path.join(work, "debian"))
        with open(os.path.join(work, "debian", "control"), "w") as f:
            f.write("Source: x\n\nPackage: x\nArchitecture: any\n")
        r = subprocess.run(["dpkg-shlibdeps", "-O", self.p("/usr/sbin/corepiped")], cwd=work,
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        deps = r.stdout.split("=", 1)[1]
        pkgs = {d.strip().split()[0] for d in deps.split(",")}
        pkgs.discard("libc6")  # essential
        pkgs = {p for p in pkgs if not SANITIZER_LIBS.match(p.rstrip("0123456789"))}
        self.assertEqual(pkgs - run_set, set())


if __name__ == "__main__":
    unittest.main()
