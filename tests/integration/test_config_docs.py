"""docs/configuration.md in step with corepiped: the key table is what the binary generates from
its key table (control/config.c), and the command-line table lists exactly the options of
--help."""
import os
import re
import subprocess
import sys
import unittest

from serverlib import COREPIPED

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DOC = os.path.join(ROOT, "docs", "configuration.md")


def help_text():
    return subprocess.run([COREPIPED, "--help"], capture_output=True, text=True, timeout=30,
                          check=True).stdout


class ConfigDocsTest(unittest.TestCase):
    def test_key_table_is_generated(self):
        r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "config-reference.py"),
                            COREPIPED, DOC, "--check"], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_help_options_are_the_documented_ones(self):
        usage = help_text()
        with open(DOC) as f:
            doc = f.read()
        flags = doc.split("\n## Command line\n", 1)[1].split("\n## ", 1)[0]
        # The option lines of --help ("  -c, --config FILE", "      --check-config FILE") and
        # the rows of the flag table ("| `-c, --config FILE` |"); the EAL arguments that both
        # mention in prose are not corepiped's options.
        help_long = set(re.findall(r"^ +(?:-\w, )?--([a-z][a-z-]*)", usage, re.M))
        help_short = set(re.findall(r"^ +-(\w), --", usage, re.M))
        doc_long = set(re.findall(r"^\| `(?:-\w, )?--([a-z][a-z-]*)", flags, re.M))
        doc_short = set(re.findall(r"^\| `-(\w), --", flags, re.M))
        self.assertGreaterEqual(len(help_long), 10, usage)
        self.assertEqual(help_long, doc_long)
        self.assertEqual(help_short, doc_short)
        # The built-in EAL arguments --help names are the ones the docs name.
        eal = re.search(r"by default ([^;]*);", usage.replace("\n", " ")).group(1)
        for arg in re.findall(r"--[a-z-]+", eal):
            self.assertIn(f"`{arg}", flags, arg)


if __name__ == "__main__":
    unittest.main()
