"""Checks of the flag file, config/flags.json: it is valid under flagd's own JSON schema
(from the open-feature-flagd crate the build downloads), and it defines exactly the flags the
code reads, each with variants of the type the code reads.
"""

import json
import pathlib
import re
import subprocess
import unittest

import jsonschema
import referencing

ROOT = pathlib.Path(__file__).resolve().parents[2]
FLAGS = ROOT / "config/flags.json"
CODE = ROOT / "crates/platform/src/flags.rs"


def flagd_schemas():
    """flagd's schema folder inside the open-feature-flagd crate in cargo's registry."""
    metadata = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    for package in json.loads(metadata.stdout)["packages"]:
        if package["name"] == "open-feature-flagd":
            return pathlib.Path(package["manifest_path"]).parent / "schemas/json"
    raise AssertionError("open-feature-flagd is not a dependency")


def code_flags():
    """Each flag the code reads, as key -> the Rust type of its value."""
    text = CODE.read_text()
    found = re.findall(r'Flag<(\w+)> = Flag \{\s*key: "([^"]+)"', text)
    assert found, "no flag found in crates/platform/src/flags.rs"
    return {key: kind for kind, key in found}


def validate(document):
    folder = flagd_schemas()
    resources = []
    for name in ("flags.json", "targeting.json"):
        schema = json.loads((folder / name).read_text())
        resources.append((schema["$id"], referencing.Resource.from_contents(schema)))
    registry = referencing.Registry().with_resources(resources)
    schema = json.loads((folder / "flags.json").read_text())
    jsonschema.Draft7Validator(schema, registry=registry).validate(document)


class FlagFile(unittest.TestCase):
    def test_the_flag_file_is_valid_under_flagds_schema(self):
        validate(json.loads(FLAGS.read_text()))

    def test_the_schema_check_refuses_a_broken_flag(self):
        document = json.loads(FLAGS.read_text())
        document["flags"]["auto-assign-enabled"]["state"] = "MAYBE"
        with self.assertRaises(jsonschema.ValidationError):
            validate(document)

    def test_the_file_defines_exactly_the_flags_the_code_reads_with_their_types(self):
        flags = json.loads(FLAGS.read_text())["flags"]
        code = code_flags()
        self.assertEqual(sorted(flags), sorted(code))
        for key, kind in code.items():
            variants = flags[key]["variants"].values()
            self.assertIn(flags[key]["defaultVariant"], flags[key]["variants"], key)
            for value in variants:
                if kind == "bool":
                    self.assertIsInstance(value, bool, key)
                elif kind == "i64":
                    self.assertTrue(isinstance(value, int) and not isinstance(value, bool), key)
                else:
                    self.assertTrue(isinstance(value, (int, float)) and not isinstance(value, bool), key)


if __name__ == "__main__":
    unittest.main()
