"""The deployment tests run against the files they guard against.

A test that reads the deployment files for something they once lacked proves little if it
would pass on the files that lacked it. Each guard below names such a test and a commit
whose files lacked what it looks for. This script copies the current tests over that
commit's tree (`git archive`) and runs each guard there: it must fail by an assertion. A
guard listed in ABSENT reads a file that commit does not have at all, so on those files it
cannot fail by an assertion, only by the missing file: it must fail that way (README.md
names these). `make check` runs it; it needs the whole history (`git fetch --unshallow` in
a shallow clone).

    python3 tests/deploy/guards.py          # every guard, a line each; exit 1 if one passes
"""

import json
import pathlib
import shutil
import subprocess
import sys
import tempfile
import traceback
import unittest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]

# The deployment files as they were before CI could pass on GitHub, releases installed,
# CD roles were per environment, Vault was provisioned and pods drained.
DAY_ONE = "4e4188384b7c4ee367a9d14ce3e61c322326bdc3"

GUARDS = {
    "WorkflowTest.test_ci_installs_every_program_the_tests_start": DAY_ONE,
    "ChartTest.test_the_migrations_job_mounts_the_database_login_and_nothing_else": DAY_ONE,
    "ChartTest.test_the_scheduler_reaches_its_smtp_relay_and_push_provider": DAY_ONE,
    "ChartTest.test_every_secret_a_release_mounts_is_made_by_terraform_or_the_deploying_steps": DAY_ONE,
    "WorkflowTest.test_cd_promotes_e2e_then_staging_then_prod": DAY_ONE,
    "WorkflowTest.test_scripts_the_workflows_call_exist": DAY_ONE,
    "TerraformTest.test_each_environment_has_a_deploy_role_only_its_own_jobs_can_assume": DAY_ONE,
    "WorkflowTest.test_cd_deploys_only_what_ci_passed_on_a_push_to_this_repositorys_main": DAY_ONE,
    "TerraformTest.test_no_password_is_kept_in_terraform_state_where_a_write_only_argument_exists": DAY_ONE,
    "ChartTest.test_each_component_reads_its_own_secrets_from_vault_with_its_own_identity": DAY_ONE,
    "TerraformTest.test_the_platform_stack_installs_vault_highly_available_and_self_unsealing": DAY_ONE,
    "ChartTest.test_autoscalers_measure_the_service_container_alone": DAY_ONE,
    "TerraformTest.test_clients_keep_their_own_address_through_the_load_balancer": DAY_ONE,
    "TerraformTest.test_the_state_bucket_is_named_with_the_account_and_given_to_every_backend": DAY_ONE,
    "TerraformTest.test_applying_an_environment_again_keeps_every_value_the_steps_set": DAY_ONE,
    "TerraformTest.test_the_platform_stack_logs_in_to_the_cluster_for_each_call": DAY_ONE,
    "TerraformTest.test_nodes_follow_pods": DAY_ONE,
    "ChartTest.test_search_runs_on_its_node_pool_in_every_environment": DAY_ONE,
    "ChartTest.test_pods_drain_before_they_stop": DAY_ONE,
    "TerraformTest.test_services_verify_the_database_certificate": DAY_ONE,
    "ChartTest.test_each_service_logs_in_as_its_own_user_with_a_password_that_can_rotate": DAY_ONE,
    "TerraformTest.test_the_platform_stack_gives_each_service_two_database_users_taking_turns": DAY_ONE,
}

# Guards whose first reading is a file their commit does not have.
ABSENT = {
    # docs/deploying.md, where the deploying steps list the secrets, came later (the steps
    # were in README.md then), and so did the Vault stack that writes some of them.
    "ChartTest.test_every_secret_a_release_mounts_is_made_by_terraform_or_the_deploying_steps",
}


def outcome(test_id):
    """Runs one test here; returns ("passed" | "assertion" | "missing file" | "error", detail)."""
    suite = unittest.defaultTestLoader.loadTestsFromName(f"test_deploy.{test_id}")
    result = unittest.TestResult()
    suite.run(result)
    if result.wasSuccessful():
        return "passed", ""
    problems = [(err, "assertion") for _, err in result.failures]
    problems += [(err, "missing file" if "FileNotFoundError" in err else "error") for _, err in result.errors]
    # One assertion that caught the old files is enough; errors after it may follow from it.
    text, kind = problems[0]
    lines = text.strip().splitlines()
    detail = next((line for line in lines if line.split(":")[0].endswith(("Error", "Exception"))), lines[-1])
    return kind, detail[:160]


def inside(test_ids):
    """Runs in the old tree: prints each guard's outcome as JSON."""
    sys.path.insert(0, str(HERE))
    results = {}
    for test_id in test_ids:
        try:
            results[test_id] = outcome(test_id)
        except Exception:  # noqa: BLE001 - a test that cannot load is an outcome too
            results[test_id] = ("error", traceback.format_exc().strip().splitlines()[-1][:160])
    print(json.dumps(results))


def old_tree(commit, folder):
    """The repository's files at `commit`, with the current deployment tests over them."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True)
    if archive.returncode != 0:
        sys.exit(f"git archive {commit} failed ({archive.stderr.decode().strip()}): "
                 "the guards need the whole history (git fetch --unshallow)")
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    tests = folder / "tests" / "deploy"
    tests.mkdir(parents=True, exist_ok=True)
    for path in HERE.glob("*.py"):
        shutil.copy(path, tests / path.name)
    return tests


def main():
    if sys.argv[1:2] == ["--inside"]:
        inside(sys.argv[2:])
        return
    wrong = []
    for commit in sorted(set(GUARDS.values())):
        ids = [test_id for test_id, base in GUARDS.items() if base == commit]
        with tempfile.TemporaryDirectory(prefix="spruce-guards-") as folder:
            tests = old_tree(commit, pathlib.Path(folder))
            run = subprocess.run([sys.executable, "guards.py", "--inside", *ids], cwd=tests,
                                 capture_output=True, text=True)
            if run.returncode != 0:
                sys.exit(f"the guards could not run on {commit[:12]}:\n{run.stderr}")
            results = json.loads(run.stdout.strip().splitlines()[-1])
        for test_id in ids:
            kind, detail = results[test_id]
            expected = "missing file" if test_id in ABSENT else "assertion"
            mark = "ok  " if kind == expected else "BAD "
            if kind != expected:
                wrong.append(test_id)
            print(f"{mark}{test_id} on {commit[:12]}: {kind}{': ' + detail if detail else ''}")
    if wrong:
        print(f"\n{len(wrong)} guard(s) did not fail on the files they guard against as expected "
              "(an assertion; a missing file for those in ABSENT)", file=sys.stderr)
        sys.exit(1)
    print(f"\nall {len(GUARDS)} guards fail on the files they guard against")


if __name__ == "__main__":
    main()
