#!/usr/bin/env python3
"""Helm values only Terraform knows, from an environment stack's `terraform output -json`:
the database host, the ECR registry, the services' IAM role, the VPC CIDR (the network
policies' datastores and Vault), the API's host name, the bucket of users' files and the
flags UI's host name. CD passes the result after the environment's values file, so the
values files hold no placeholder for them.

    terraform -chdir=deploy/terraform/envs/e2e output -json > terraform.json
    scripts/terraform_values.py terraform.json > terraform-values.json   # JSON is YAML
    helm upgrade ... -f helm/spruce/values-e2e.yaml -f terraform-values.json
"""

import json
import sys


def values(outputs):
    """The values for the chart from the stack's outputs (its one output, `spruce`)."""
    spruce = outputs["spruce"]["value"]
    registries = {url.split("/", 1)[0] for url in spruce["ecr_repositories"].values()}
    if len(registries) != 1:
        raise ValueError(f"the services' repositories are in {len(registries)} registries: {sorted(registries)}")
    return {
        "config": {"database": {"host": spruce["database_host"]}},
        "image": {"registry": registries.pop()},
        "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": spruce["services_role_arn"]}},
        "networkPolicy": {
            "datastoreCIDRs": [spruce["vpc_cidr"]],
            "vault": {"cidrs": [spruce["vpc_cidr"]], "port": 8200},
        },
        "gateway": {"ingress": {"host": spruce["api_host"]}},
        "storage": {"bucket": spruce["uploads_bucket"]},
        # The flags UI, for the internal ingress (the platform stack routes it).
        "flagd": {"ui": {"enabled": True, "host": f"flags.{spruce['internal_domain']}"}},
    }


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: terraform_values.py TERRAFORM_OUTPUT_JSON")
    with open(sys.argv[1], encoding="utf-8") as file:
        json.dump(values(json.load(file)), sys.stdout, indent=2)
        print()
