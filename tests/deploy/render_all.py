"""Writes the chart rendered with the default values and each environment's values into
the folder given as the argument, one YAML file each (for checkov's Kubernetes checks)."""

import pathlib
import sys

import yaml

from test_deploy import ENVIRONMENTS, env_values, render

out = pathlib.Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
for label, values in [("defaults", {}), *((env, env_values(env)) for env in ENVIRONMENTS)]:
    with open(out / f"{label}.yaml", "w") as file:
        yaml.safe_dump_all(render(values), file)
