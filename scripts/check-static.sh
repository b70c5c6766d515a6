#!/usr/bin/env bash
# Static checks of the deployment files (part of `make check`): `terraform fmt -check`, and
# checkov over the Terraform, the Dockerfile and the Helm chart as rendered for the default
# values and each environment. Every suppression is inline with its reason: `#checkov:skip=`
# in the .tf files, `checkov.io/skipN` annotations in the chart (templates/_helpers.tpl).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v terraform >/dev/null 2>&1; then
    echo "check-static: terraform is not installed, so 'terraform fmt -check' did NOT run" >&2
    exit 1
fi
terraform -chdir=deploy/terraform fmt -check -recursive -diff
echo "terraform fmt: clean"

rendered=$(mktemp -d)
trap 'rm -rf "$rendered"' EXIT
python3 tests/deploy/render_all.py "$rendered"

scan() {
    checkov --quiet --compact --skip-download --download-external-modules false "$@"
}
scan --directory deploy/terraform --framework terraform
scan --directory docker --framework dockerfile
scan --directory "$rendered" --framework kubernetes
