"""Checks of the deployment files that need no cluster and no Docker engine.

The Helm chart is rendered and linted with Helm's own Go SDK (helm-python-sdk), every
rendered manifest is validated against the Kubernetes 1.33 schemas in strict mode
(kubernetes-validate), and the compose file and observability configuration are checked for
consistency. Run by `make check`: python3 -m unittest discover -s tests/deploy
"""

import copy
import importlib.util
import json
import os
import pathlib
import re
import subprocess
import tempfile
import tomllib
import unittest

import helm_python as helm
import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "spruce"
KUBE_VERSION = "1.33.0"
COMPONENTS = ["gateway", "core", "search", "scheduler"]
BACKENDS = ["core", "search", "scheduler"]
ENVIRONMENTS = ["e2e", "staging", "prod"]
# Kinds from CRDs (prometheus-operator, KEDA) have no schema in kubernetes-validate
# (KEDA's are checked in test_observability.py).
CRD_KINDS = {"ServiceMonitor", "PrometheusRule", "ScaledObject"}


def env_values(environment):
    return yaml.safe_load((CHART / f"values-{environment}.yaml").read_text())


def render(values=None, chart=CHART, name="spruce"):
    """Renders a chart (Spruce's unless told) as an install named `name` into the namespace
    of that name would; returns the list of manifests."""
    chart = helm.Chart.load(str(chart))
    rendered = chart.render(values or {}, name=name, namespace=name, is_install=True)
    manifests = []
    for path, text in rendered.items():
        if path.endswith("NOTES.txt"):
            continue
        for document in yaml.safe_load_all(text):
            if document:
                manifests.append(document)
    return manifests


def by_kind(manifests, kind):
    return [m for m in manifests if m["kind"] == kind]


def services_of(manifests):
    """The Deployments of the four Spruce services (flagd's is not one)."""
    return [m for m in by_kind(manifests, "Deployment") if component_of(m) in COMPONENTS]


def component_of(manifest):
    return manifest["metadata"].get("labels", {}).get("app.kubernetes.io/component")


def settings_of(manifests, component):
    (config,) = [
        m for m in by_kind(manifests, "ConfigMap") if m["metadata"]["name"] == f"spruce-{component}"
    ]
    return tomllib.loads(config["data"]["default.toml"])


def variants():
    """(label, values) for every combination the tests render."""
    yield "defaults", {}
    for environment in ENVIRONMENTS:
        yield environment, env_values(environment)
    for component in COMPONENTS:
        yield f"without {component}", {component: {"enabled": False}}
    yield "flags ui", {"flagd": {"ui": {"enabled": True}}}
    yield "vault", {"secrets": {"source": "vault"}}


class ChartTest(unittest.TestCase):
    def test_lint_has_no_errors(self):
        for label, values in variants():
            with self.subTest(label):
                report = helm.lint(str(CHART), values, kube_version=f"v{KUBE_VERSION}")
                errors = [m for m in report["messages"] if m["severity"] >= 3]
                self.assertEqual(errors, [], label)
                self.assertEqual(report.get("errors") or [], [], label)

    def test_every_manifest_is_valid_kubernetes_in_strict_mode(self):
        for label, values in variants():
            manifests = render(values)
            self.assertTrue(manifests, label)
            for manifest in manifests:
                name = f"{label}: {manifest['kind']}/{manifest['metadata']['name']}"
                with self.subTest(name):
                    if manifest["kind"] in CRD_KINDS:
                        self.assertIn("spec", manifest, name)
                        continue
                    kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)

    def test_disabling_a_component_removes_all_of_its_resources(self):
        everything = render()
        for component in COMPONENTS:
            with self.subTest(component):
                present = [m for m in everything if component_of(m) == component]
                kinds = {m["kind"] for m in present}
                self.assertTrue({"Deployment", "Service", "ConfigMap"} <= kinds, kinds)
                left = render({component: {"enabled": False}})
                self.assertEqual([m for m in left if component_of(m) == component], [])
                names = [m["metadata"]["name"] for m in left]
                self.assertFalse(
                    [n for n in names if n == f"spruce-{component}" or n.startswith(f"spruce-{component}-")],
                    names,
                )
                others = {m["metadata"]["name"] for m in everything if component_of(m) in set(COMPONENTS) - {component}}
                self.assertTrue(others <= set(names), "the other components stay")

    def test_migrations_hook_runs_for_enabled_services_before_install_and_upgrade(self):
        (job,) = [m for m in by_kind(render(), "Job")]
        self.assertEqual(job["metadata"]["annotations"]["helm.sh/hook"], "pre-install,pre-upgrade")
        containers = job["spec"]["template"]["spec"]["containers"]
        self.assertEqual([c["name"] for c in containers], ["core", "search", "scheduler"])
        self.assertTrue(all(c["args"] == ["migrate"] for c in containers))
        (job,) = by_kind(render({"search": {"enabled": False}}), "Job")
        self.assertEqual([c["name"] for c in job["spec"]["template"]["spec"]["containers"]], ["core", "scheduler"])
        only_gateway = {c: {"enabled": False} for c in ["core", "search", "scheduler"]}
        self.assertEqual(by_kind(render(only_gateway), "Job"), [])

    def test_pods_are_locked_down_and_probed(self):
        for label, values in variants():
            for deployment in by_kind(render(values), "Deployment"):
                with self.subTest(f"{label}: {deployment['metadata']['name']}"):
                    pod = deployment["spec"]["template"]["spec"]
                    self.assertTrue(pod["securityContext"]["runAsNonRoot"])
                    # One container, but flagd's with its UI (flagd.ui).
                    containers = pod["containers"]
                    self.assertEqual(len(containers), 2 if label == "flags ui" and component_of(deployment) == "flagd" else 1)
                    for container in containers + pod.get("initContainers", []):
                        security = container["securityContext"]
                        self.assertTrue(security["readOnlyRootFilesystem"])
                        self.assertFalse(security["allowPrivilegeEscalation"])
                        self.assertEqual(security["capabilities"]["drop"], ["ALL"])
                        self.assertIn("limits", container["resources"])
                    for container in containers:
                        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                            self.assertIn(probe, container, container["name"])
                    if component_of(deployment) in BACKENDS:
                        self.assertIn("grpc", containers[0]["livenessProbe"])

    def test_settings_render_to_toml_the_services_read(self):
        manifests = render({"scheduler": {"jobs": {"auto-assign": {"enabled": False}}}})
        core = settings_of(manifests, "core")
        self.assertEqual(core["database"]["password_file"], "/run/secrets/spruce-database/core")
        self.assertEqual(core["database"]["user_file"], "/run/secrets/spruce-database/core-user")
        self.assertEqual(core["database"]["ssl_mode"], "verify-full")
        self.assertEqual(core["database"]["ssl_root_cert"], "/etc/spruce-database-ca/ca.pem")
        self.assertEqual(core["auth"]["private_key_file"], "/run/secrets/spruce/auth-private-key")
        self.assertEqual(core["grpc"]["port"], 50051)
        self.assertEqual(
            core["callers"]["service_keys"]["gateway_file"], "/run/secrets/spruce/gateway-public-key"
        )
        gateway = settings_of(manifests, "gateway")
        self.assertEqual(gateway["core"]["url"], "http://spruce-core-headless:50051")
        self.assertEqual(gateway["core"]["timeout"], "5s")
        self.assertEqual(gateway["redis"]["url_file"], "/run/secrets/spruce/redis-url")
        self.assertNotIn("database", gateway)
        self.assertEqual(gateway["identity"]["private_key_file"], "/run/secrets/spruce/gateway-private-key")
        for component in ["gateway", "search", "scheduler"]:
            self.assertEqual(
                settings_of(manifests, component)["auth"]["public_key_file"],
                "/run/secrets/spruce/auth-public-key",
            )
        self.assertEqual(
            core["callers"]["service_keys"]["search_file"], "/run/secrets/spruce/search-public-key"
        )
        search = settings_of(manifests, "search")
        self.assertEqual(search["identity"]["private_key_file"], "/run/secrets/spruce/search-private-key")
        self.assertEqual(search["bus"]["url_file"], "/run/secrets/spruce/amqp-url")
        self.assertEqual(search["bus"]["exchange"], "spruce.events")
        self.assertEqual(search["core"]["url"], "http://spruce-core-headless:50051")
        self.assertEqual(search["redis"]["url_file"], "/run/secrets/spruce/redis-url")
        # Core prices bookings through search, which knows core's tokens by core's public key.
        self.assertEqual(core["search"]["url"], "http://spruce-search-headless:50052")
        self.assertEqual(
            search["callers"]["service_keys"]["core_file"], "/run/secrets/spruce/auth-public-key"
        )
        scheduler = settings_of(manifests, "scheduler")
        # Switching a job off keeps its schedule.
        self.assertEqual(
            scheduler["jobs"]["auto-assign"],
            {"schedule": "* * * * *", "time_zone": "UTC", "enabled": False},
        )
        self.assertTrue(scheduler["jobs"]["retrain-duration-model"]["enabled"])
        # Email through SMTP with its password from the Secret; push through the HTTP
        # provider with its token from the Secret (the log provider needs none).
        self.assertEqual(scheduler["email"]["transport"], "smtp")
        self.assertEqual(scheduler["email"]["password_file"], "/run/secrets/spruce/smtp-password")
        self.assertEqual(scheduler["push"]["provider"], "http")
        self.assertEqual(scheduler["push"]["token_file"], "/run/secrets/spruce/push-token")
        logging = settings_of(
            render({"scheduler": {"settings": {"push": {"provider": "log"}}}}),
            "scheduler",
        )
        self.assertNotIn("token_file", logging["push"])
        # The scheduler calls core and search as itself; both know its public key.
        self.assertEqual(scheduler["core"]["url"], "http://spruce-core-headless:50051")
        self.assertEqual(scheduler["search"]["url"], "http://spruce-search-headless:50052")
        self.assertEqual(
            scheduler["identity"]["private_key_file"], "/run/secrets/spruce/scheduler-private-key"
        )
        for component in (core, search):
            self.assertEqual(
                component["callers"]["service_keys"]["scheduler_file"],
                "/run/secrets/spruce/scheduler-public-key",
            )
        services = {m["metadata"]["name"] for m in by_kind(manifests, "Service")}
        for key in ("core", "search", "scheduler"):
            host = gateway[key]["url"].split("//")[1].split(":")[0]
            self.assertIn(host, services)

    def test_each_service_logs_in_as_its_own_user_with_a_password_that_can_rotate(self):
        # The database Secret is mounted without subPath (the kubelet refreshes such files)
        # in every secrets mode, each service seeing its own key only.
        for source in ("existingSecret", "vault"):
            manifests = render({"secrets": {"source": source}})
            pods = {d["metadata"]["name"]: d["spec"]["template"]["spec"] for d in services_of(manifests)}
            (job,) = [j for j in by_kind(manifests, "Job") if "migrations" in j["metadata"]["name"]]
            pods["migrations"] = job["spec"]["template"]["spec"]
            for name, pod in pods.items():
                with self.subTest(f"{source}: {name}"):
                    component = name.removeprefix("spruce-")
                    volumes = {v["name"]: v for v in pod["volumes"] if v["name"].startswith("database")}
                    if component == "gateway":
                        self.assertEqual(volumes, {})
                        continue
                    for container in pod["containers"]:
                        # A migrations container is named for its service.
                        own = container["name"] if component == "migrations" else component
                        mounts = [m for m in container["volumeMounts"] if m["name"].startswith("database")]
                        (mount,) = [m for m in mounts if m["name"] != "database-ca"]
                        self.assertNotIn("subPath", mount)
                        self.assertEqual(mount["mountPath"], "/run/secrets/spruce-database")
                        secret = volumes[mount["name"]]["secret"]
                        self.assertEqual(secret["secretName"], "spruce-database")
                        # The password and the user in use (two take turns at a rotation).
                        self.assertEqual([item["key"] for item in secret["items"]], [own, f"{own}-user"])
                        (ca,) = [m for m in mounts if m["name"] == "database-ca"]
                        self.assertEqual(volumes["database-ca"]["configMap"]["name"], "spruce-database-ca")
            for component in ("core", "search", "scheduler"):
                database = settings_of(manifests, component)["database"]
                self.assertEqual(database.get("user_file"), f"/run/secrets/spruce-database/{component}-user")
                self.assertEqual(database["password_file"], f"/run/secrets/spruce-database/{component}")

    def test_the_migrations_job_mounts_the_database_login_and_nothing_else(self):
        # A key missing from another secret must not stop a release: the Job reads the
        # database section alone, from the database Secret alone.
        for label, values in variants():
            manifests = render(values)
            jobs = [j for j in by_kind(manifests, "Job") if j["metadata"]["name"].endswith("-migrations")]
            if not jobs:
                continue
            (job,) = jobs
            with self.subTest(label):
                pod = job["spec"]["template"]
                self.assertNotIn("vault.hashicorp.com/agent-inject", (pod["metadata"].get("annotations") or {}))
                self.assertFalse(pod["spec"]["automountServiceAccountToken"])
                for volume in pod["spec"]["volumes"]:
                    if "secret" in volume:
                        self.assertEqual(volume["secret"]["secretName"], "spruce-database", volume["name"])
                for config in by_kind(manifests, "ConfigMap"):
                    if config["metadata"]["name"].endswith("-migrations"):
                        settings = tomllib.loads(config["data"]["default.toml"])
                        self.assertEqual(set(settings), {"database", "telemetry"})

    def test_pods_drain_before_they_stop(self):
        for label, values in variants():
            manifests = render(values)
            for deployment in services_of(manifests):
                with self.subTest(f"{label}: {deployment['metadata']['name']}"):
                    pod = deployment["spec"]["template"]["spec"]
                    (container,) = [c for c in pod["containers"] if c["name"] == component_of(deployment)]
                    # The kubelet's own sleep: the image has no shell for an exec hook.
                    self.assertEqual(container.get("lifecycle", {}).get("preStop"), {"sleep": {"seconds": 5}})
                    drain = settings_of(manifests, component_of(deployment))["http"]["drain"]
                    self.assertEqual(drain, "5000ms")
                    self.assertGreaterEqual(pod["terminationGracePeriodSeconds"], 5 + 5 + 10)
        with self.assertRaises(helm.HelmError):
            render({"shutdown": {"preStopSeconds": 20, "drainMs": 5000, "terminationGracePeriodSeconds": 30}})

    def test_each_component_reads_its_own_secrets_from_vault_with_its_own_identity(self):
        for environment in ENVIRONMENTS:
            manifests = render(env_values(environment))
            accounts = {a["metadata"]["name"] for a in by_kind(manifests, "ServiceAccount")}
            readers = {}
            for deployment in services_of(manifests):
                component = component_of(deployment)
                with self.subTest(f"{environment}: {component}"):
                    template = deployment["spec"]["template"]
                    self.assertEqual(template["spec"]["serviceAccountName"], f"spruce-{component}")
                    self.assertIn(f"spruce-{component}", accounts)
                    annotations = template["metadata"]["annotations"]
                    self.assertEqual(annotations["vault.hashicorp.com/role"], f"spruce-{component}")
                    paths = {
                        key.removeprefix("vault.hashicorp.com/agent-inject-secret-"): value
                        for key, value in annotations.items()
                        if key.startswith("vault.hashicorp.com/agent-inject-secret-")
                    }
                    for name, path in paths.items():
                        self.assertEqual(path, f"secret/data/{environment}/{name}")
                    readers[component] = set(paths)
            # The gateway never sees a private key but its own; only core signs users' tokens.
            self.assertEqual({c for c, names in readers.items() if "auth-private-key" in names}, {"core"})
            self.assertNotIn("stripe-secret-key", readers["gateway"])
            self.assertEqual(self.vault_policies(environment), readers)

    @staticmethod
    def vault_policies(environment):
        """What deploy/terraform/vault grants each component: the names its policy reads."""
        stack = (ROOT / "deploy/terraform/vault/main.tf").read_text()
        block = re.search(r"secrets = \{\n(.*?)\n  \}", stack, re.S).group(1)
        granted = {}
        for line in block.splitlines():
            match = re.match(r'\s*(\w+)\s*=\s*\[(.*)\]', line)
            if match:
                granted[match.group(1)] = set(re.findall(r'"([^"]+)"', match.group(2)))
        return granted

    def test_every_secret_a_release_mounts_is_made_by_terraform_or_the_deploying_steps(self):
        guide = (ROOT / "docs/deploying.md").read_text()
        step = guide[guide.index("\n**The secrets in Vault**"):]
        step = step[: step.index("\n\n**", 10)]
        steps = guide[guide.index("**AWS, from an empty account"):guide.index("\n**The secrets in Vault**")]
        platform = (ROOT / "deploy/terraform/platform/main.tf").read_text()
        vault_stack = (ROOT / "deploy/terraform/vault/main.tf").read_text()
        written_by_terraform = set(re.findall(r'vault_kv_secret_v2" "(\w+)"', vault_stack))
        for environment in ENVIRONMENTS:
            manifests = render(env_values(environment))
            with self.subTest(environment):
                for deployment in by_kind(manifests, "Deployment") + by_kind(manifests, "Job"):
                    template = deployment["spec"]["template"]
                    annotations = template["metadata"].get("annotations") or {}
                    for key, path in annotations.items():
                        if not key.startswith("vault.hashicorp.com/agent-inject-secret-"):
                            continue
                        name = path.rsplit("/", 1)[1]
                        made = name.replace("-", "_") in written_by_terraform
                        self.assertTrue(made or f"secret/{environment}/{name}" in step.replace("<env>", environment), name)
                    for volume in template["spec"]["volumes"]:
                        if volume.get("secret", {}).get("secretName") == "spruce-e2e-seed":
                            # The e2e seed Job's password: step 9 of docs/deploying.md makes it.
                            self.assertIn("create secret generic\n   spruce-e2e-seed --from-literal=password=", steps)
                            self.assertEqual([i["key"] for i in volume["secret"]["items"]], ["password"])
                        elif "secret" in volume:
                            self.assertEqual(volume["secret"]["secretName"], "spruce-database")
                            for item in volume["secret"]["items"]:
                                # The platform stack writes <service> and <service>-user.
                                self.assertRegex(item["key"], r"^(core|search|scheduler)(-user)?$")
                            self.assertIn('name      = "spruce-database"', platform)
                        if "configMap" in volume and volume["name"] == "database-ca":
                            self.assertIn(f'name      = "{volume["configMap"]["name"]}"', platform)

    def test_the_scheduler_reaches_its_smtp_relay_and_push_provider(self):
        for environment in ENVIRONMENTS:
            manifests = render(env_values(environment))
            email = settings_of(manifests, "scheduler")["email"]
            with self.subTest(environment):
                self.assertNotIn("spruce.example", email["host"])
                (policy,) = [p for p in by_kind(manifests, "NetworkPolicy") if p["metadata"]["name"] == "spruce-scheduler"]
                ports = {port["port"] for rule in policy["spec"]["egress"] for port in rule.get("ports", [])}
                self.assertIn(email["port"], ports)
                self.assertIn(443, ports)

    def test_search_runs_on_its_node_pool_in_every_environment(self):
        for environment in ENVIRONMENTS:
            manifests = render(env_values(environment))
            (search,) = [d for d in by_kind(manifests, "Deployment") if component_of(d) == "search"]
            pod = search["spec"]["template"]["spec"]
            with self.subTest(environment):
                self.assertEqual(pod.get("nodeSelector"), {"workload": "search"})
                self.assertIn({"key": "dedicated", "operator": "Equal", "value": "search", "effect": "NoSchedule"}, pod.get("tolerations", []))
        module = (ROOT / "deploy/terraform/modules/spruce/cluster.tf").read_text()
        self.assertIn('labels          = { workload = "search" }', module)

    def test_stripe_key_is_mounted_only_when_stripe_is_the_provider(self):
        prod = render(env_values("prod"))
        self.assertIn("secret_key_file", settings_of(prod, "core")["payments"]["stripe"])
        core = [d for d in by_kind(prod, "Deployment") if component_of(d) == "core"][0]
        annotations = core["spec"]["template"]["metadata"]["annotations"]
        self.assertIn("vault.hashicorp.com/agent-inject-secret-stripe-secret-key", annotations)
        fake = {"environment": "local", "core": {"settings": {"payments": {"provider": "fake"}}}}
        self.assertNotIn("stripe", json.dumps(settings_of(render(fake), "core")))

    def test_vault_switch_replaces_the_secret_volume_with_agent_annotations(self):
        for deployment in services_of(render({"secrets": {"source": "vault"}})):
            pod = deployment["spec"]["template"]
            self.assertEqual(pod["metadata"]["annotations"]["vault.hashicorp.com/agent-inject"], "true")
            self.assertNotIn("secrets", [v["name"] for v in pod["spec"]["volumes"]])
        for deployment in services_of(render()):
            self.assertNotIn("vault.hashicorp.com/agent-inject", deployment["spec"]["template"]["metadata"]["annotations"])

    def test_every_release_pod_can_reach_dns_and_its_datastores_under_the_policies(self):
        # Default deny selects every pod with the release labels, the migrations hook's too.
        for label, values in variants():
            manifests = render(values)
            policies = by_kind(manifests, "NetworkPolicy")
            vault = (values.get("secrets") or {}).get("source") == "vault"
            pods = [(m["metadata"]["name"], m["spec"]["template"]) for m in manifests if m["kind"] in ("Deployment", "Job")]
            self.assertTrue(any(name.endswith("migrations") for name, _ in pods), label)
            for name, pod in pods:
                labels = pod["metadata"]["labels"]
                selecting = [
                    policy
                    for policy in policies
                    if all(labels.get(key) == value for key, value in policy["spec"]["podSelector"]["matchLabels"].items())
                ]
                if not selecting or name == "spruce-flagd":
                    continue
                egress = [
                    rule for policy in selecting if "Egress" in policy["spec"]["policyTypes"] for rule in policy["spec"].get("egress", [])
                ]

                def allows(port, peer_matches, protocol="TCP"):
                    return any(
                        any(p["port"] == port and p.get("protocol", "TCP") == protocol for p in rule.get("ports", []))
                        and any(peer_matches(peer) for peer in rule.get("to", []))
                        for rule in egress
                    )

                def kube_system(peer):
                    return peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name") == "kube-system"

                with self.subTest(f"{label}: {name}"):
                    self.assertTrue(allows(53, kube_system, "UDP"), "DNS")
                    self.assertTrue(allows(5432, lambda peer: "ipBlock" in peer), "PostgreSQL")
                    if vault:
                        self.assertTrue(allows(8200, lambda peer: "ipBlock" in peer), "Vault")

    def test_callers_reach_grpc_through_headless_services(self):
        # A ClusterIP would pin each caller's one HTTP/2 connection to one pod; a headless
        # name resolves to every ready pod, and the callers balance over them.
        manifests = render()
        services = {s["metadata"]["name"]: s for s in by_kind(manifests, "Service")}
        urls = [
            *(settings_of(manifests, "gateway")[key]["url"] for key in ("core", "search", "scheduler")),
            settings_of(manifests, "core")["search"]["url"],
            settings_of(manifests, "search")["core"]["url"],
            settings_of(manifests, "scheduler")["core"]["url"],
            settings_of(manifests, "scheduler")["search"]["url"],
        ]
        urls = [url for url in urls if isinstance(url, str) and url.startswith("http")]
        self.assertEqual(len(urls), 7)
        for url in urls:
            with self.subTest(url):
                host, port = url.removeprefix("http://").split(":")
                service = services[host]
                self.assertEqual(service["spec"]["clusterIP"], "None")
                self.assertEqual([p["port"] for p in service["spec"]["ports"]], [int(port)])
                component = service["spec"]["selector"]["app.kubernetes.io/component"]
                self.assertEqual(host, f"spruce-{component}-headless")

    def test_grpc_ports_admit_only_their_callers(self):
        expected = {"core": {"gateway", "scheduler", "search"}, "search": {"gateway", "scheduler", "core"}, "scheduler": {"gateway"}}
        policies = {p["metadata"]["name"]: p for p in by_kind(render(), "NetworkPolicy")}
        values = yaml.safe_load((CHART / "values.yaml").read_text())
        for component, callers in expected.items():
            grpc = values[component]["ports"]["grpc"]
            rules = [r for r in policies[f"spruce-{component}"]["spec"]["ingress"] if any(p["port"] == grpc for p in r["ports"])]
            allowed = {peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for rule in rules for peer in rule["from"]}
            self.assertEqual(allowed, callers, component)

    def test_the_ingress_publishes_the_api_and_docs_only(self):
        for label, values in variants():
            for ingress in by_kind(render(values), "Ingress"):
                with self.subTest(label):
                    paths = [p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
                    self.assertIn("/v1", paths)
                    self.assertTrue(set(paths) <= {"/v1", "/docs", "/openapi.json"}, paths)
        (prod,) = by_kind(render(env_values("prod")), "Ingress")
        self.assertEqual([p["path"] for p in prod["spec"]["rules"][0]["http"]["paths"]], ["/v1"])

    def test_monitoring_resources_follow_their_switches(self):
        self.assertFalse([m for m in render() if m["kind"] in CRD_KINDS])
        # Switched on, but the cluster's API is unknown (an offline render serves only
        # Kubernetes' own APIs): nothing that would fail the release.
        self.assertFalse([m for m in render(env_values("e2e")) if m["kind"] in CRD_KINDS])
        values = env_values("e2e")
        values["monitoring"]["assumeAPI"] = True
        e2e = render(values)
        self.assertEqual(len(by_kind(e2e, "ServiceMonitor")), 4)
        for monitor in by_kind(e2e, "ServiceMonitor") + by_kind(e2e, "PrometheusRule"):
            # What kube-prometheus-stack selects by default.
            self.assertEqual(monitor["metadata"]["labels"]["release"], "kube-prometheus-stack")
        (rule,) = by_kind(e2e, "PrometheusRule")
        groups = []
        for name in ["alerts.yml", "slo.yml"]:
            groups += yaml.safe_load((ROOT / "deploy/observability" / name).read_text())["groups"]
            self.assertEqual(
                (CHART / "files" / name).read_text(),
                (ROOT / "deploy/observability" / name).read_text(),
                f"helm/spruce/files/{name} is a copy of deploy/observability/{name}",
            )
        self.assertEqual(rule["spec"], {"groups": groups})
        for monitor in by_kind(e2e, "ServiceMonitor"):
            # The rules name components as the local Prometheus does.
            (endpoint,) = monitor["spec"]["endpoints"]
            self.assertIn(
                {"targetLabel": "component", "replacement": component_of(monitor)},
                endpoint["relabelings"],
            )

    def test_network_policies_deny_by_default(self):
        manifests = render()
        policies = by_kind(manifests, "NetworkPolicy")
        deny = [p for p in policies if p["metadata"]["name"].endswith("default-deny")]
        self.assertEqual(len(deny), 1)
        self.assertEqual(deny[0]["spec"]["policyTypes"], ["Ingress", "Egress"])
        self.assertNotIn("ingress", deny[0]["spec"])
        # Default deny, one per component, one for the migrations hook's pods, one for flagd.
        self.assertEqual(len(policies), 7)
        self.assertEqual(by_kind(render({"networkPolicy": {"enabled": False}}), "NetworkPolicy"), [])

    def test_flagd_serves_the_flag_file_to_every_service_and_nobody_else(self):
        for label, values in variants():
            manifests = render(values)
            with self.subTest(label):
                (config,) = [m for m in by_kind(manifests, "ConfigMap") if m["metadata"]["name"] == "spruce-flagd"]
                flags = json.loads(config["data"]["flags.json"])
                self.assertEqual(flags, json.loads((ROOT / "config/flags.json").read_text()),
                                 "copy config/flags.json to helm/spruce/files/flags.json")
                (service,) = [s for s in by_kind(manifests, "Service") if s["metadata"]["name"] == "spruce-flagd"]
                (port,) = service["spec"]["ports"]
                enabled = [c for c in COMPONENTS if (values.get(c) or {}).get("enabled", True)]
                for component in enabled:
                    self.assertEqual(settings_of(manifests, component)["flags"]["sync"], f"spruce-flagd:{port['port']}")
                policies = {p["metadata"]["name"]: p["spec"] for p in by_kind(manifests, "NetworkPolicy")}
                flagd = policies["spruce-flagd"]
                self.assertEqual(flagd["egress"], [], "flagd reaches nothing")
                (rule,) = [r for r in flagd["ingress"] if any(p["port"] == port["port"] for p in r["ports"])]
                self.assertEqual([p["port"] for p in rule["ports"]], [port["port"]])
                callers = [peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for peer in rule["from"]]
                self.assertEqual(sorted(callers), sorted(enabled))
                for component in enabled:
                    egress = policies[f"spruce-{component}"]["egress"]
                    self.assertTrue(any(
                        any(p["port"] == port["port"] for p in rule.get("ports", []))
                        and any(peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component") == "flagd"
                                for peer in rule.get("to", []))
                        for rule in egress), component)
        manifests = render({"flagd": {"enabled": False}})
        self.assertFalse([m for m in manifests if component_of(m) == "flagd"])
        self.assertNotIn("flags", settings_of(manifests, "core"))

    def test_the_flags_ui_edits_the_file_flagd_watches_and_only_the_internal_ingress_reaches_it(self):
        self.assertFalse([s for s in by_kind(render(), "Service") if s["metadata"]["name"] == "spruce-flagd-ui"])
        manifests = render({"flagd": {"ui": {"enabled": True}}})
        (flagd,) = [d for d in by_kind(manifests, "Deployment") if component_of(d) == "flagd"]
        pod = flagd["spec"]["template"]["spec"]
        containers = {c["name"]: c for c in pod["containers"]}
        (seed,) = pod["initContainers"]
        watched = next(a for a in containers["flagd"]["args"] if a.startswith("--uri=file:"))[len("--uri=file:"):]
        self.assertEqual(seed["command"][-1], watched, "the seed is written where flagd reads")
        mounts = lambda c: {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
        folder = watched.rsplit("/", 1)[0]
        self.assertEqual(mounts(seed)["flags"], folder)
        self.assertEqual(mounts(containers["flagd"])["flags"], folder)
        # The UI writes /app/data/demo.flagd.json (the OpenTelemetry Demo's flagd-ui).
        self.assertEqual(mounts(containers["ui"])["flags"], "/app/data")
        self.assertEqual(watched.rsplit("/", 1)[1], "demo.flagd.json")
        (volume,) = [v for v in pod["volumes"] if v["name"] == "flags"]
        self.assertIn("emptyDir", volume)
        env = {e["name"]: e for e in containers["ui"]["env"]}
        self.assertEqual(env["SECRET_KEY_BASE"]["valueFrom"]["secretKeyRef"], {"name": "spruce-flagd-ui", "key": "secret-key-base"})
        (service,) = [s for s in by_kind(manifests, "Service") if s["metadata"]["name"] == "spruce-flagd-ui"]
        self.assertEqual(service["spec"]["ports"][0]["targetPort"], "ui")
        policy = next(p["spec"] for p in by_kind(manifests, "NetworkPolicy") if p["metadata"]["name"] == "spruce-flagd")
        (ui_rule,) = [r for r in policy["ingress"] if any(p["port"] == 4000 for p in r["ports"])]
        self.assertEqual(ui_rule["from"], [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx-internal"}}}])
        platform = (ROOT / "deploy/terraform/platform/main.tf").read_text()
        self.assertIn('service = "spruce-flagd-ui"', platform)
        self.assertIn('name      = "spruce-flagd-ui"', platform)
        with self.assertRaises(Exception):
            render({"flagd": {"replicas": 2, "ui": {"enabled": True}}})

    def test_users_files_go_to_the_bucket_through_https_or_to_a_writable_folder(self):
        manifests = render()
        for component in ("gateway", "scheduler"):
            with self.subTest(component):
                storage = settings_of(manifests, component)["storage"]
                self.assertEqual(storage["url"], "file:///tmp/spruce-objects")
                (deployment,) = [d for d in services_of(manifests) if component_of(d) == component]
                pod = deployment["spec"]["template"]["spec"]
                (container,) = pod["containers"]
                self.assertIn({"name": "tmp", "mountPath": "/tmp"}, container["volumeMounts"])
                self.assertTrue(any(v["name"] == "tmp" and "emptyDir" in v for v in pod["volumes"]))
        for component in ("core", "search"):
            self.assertNotIn("storage", settings_of(manifests, component))
        values = {"storage": {"bucket": "spruce-e2e-uploads", "prefix": "e2e", "region": "eu-west-1"},
                  "gateway": {"ingress": {"host": "api.example.org"}}}
        manifests = render(values)
        policies = {p["metadata"]["name"]: p["spec"] for p in by_kind(manifests, "NetworkPolicy")}
        for component in ("gateway", "scheduler"):
            with self.subTest(f"bucket: {component}"):
                storage = settings_of(manifests, component)["storage"]
                self.assertEqual(storage["url"], "s3://spruce-e2e-uploads/e2e")
                self.assertEqual(storage["region"], "eu-west-1")
                self.assertTrue(any(
                    any(p["port"] == 443 for p in rule.get("ports", []))
                    and any(peer.get("ipBlock") for peer in rule.get("to", []))
                    for rule in policies[f"spruce-{component}"]["egress"]), component)
        self.assertEqual(settings_of(manifests, "gateway")["storage"]["public_url"], "https://api.example.org/v1/files")
        gateway_egress = by_kind(render(), "NetworkPolicy")
        (gateway_policy,) = [p["spec"] for p in gateway_egress if p["metadata"]["name"] == "spruce-gateway"]
        self.assertFalse(any(p["port"] == 443 for rule in gateway_policy["egress"] for p in rule.get("ports", [])),
                         "without a bucket the gateway reaches no HTTPS endpoint")

    def test_autoscalers_measure_the_service_container_alone(self):
        (hpa,) = by_kind(render(), "HorizontalPodAutoscaler")
        self.assertEqual(hpa["spec"]["scaleTargetRef"]["name"], "spruce-search")
        for environment in ENVIRONMENTS:
            for hpa in by_kind(render(env_values(environment)), "HorizontalPodAutoscaler"):
                with self.subTest(f"{environment}: {hpa['metadata']['name']}"):
                    (metric,) = hpa["spec"]["metrics"]
                    # Vault's agent sidecar has a CPU request of its own: a pod-level
                    # utilisation would count it.
                    self.assertEqual(metric["type"], "ContainerResource")
                    self.assertEqual(metric["containerResource"]["name"], "cpu")
                    self.assertEqual(metric["containerResource"]["container"], component_of(hpa))

    def test_schema_refuses_bad_values(self):
        chart = helm.Chart.load(str(CHART))
        for bad in (
            {"environment": "qa"},
            {"core": {"replicas": "two"}},
            {"secrets": {"source": "env"}},
            {"scheduler": {"jobs": {"auto-assign": {"enabled": "yes"}}}},
            # A job the scheduler does not have (the chart's old names among them).
            {"scheduler": {"jobs": {"reminders": {"schedule": "* * * * *", "enabled": True}}}},
        ):
            with self.subTest(json.dumps(bad)):
                with self.assertRaises(helm.HelmError):
                    chart.render(bad, name="spruce", namespace="spruce", is_install=True)


def service_binary(component):
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    binary = target / "debug" / f"spruce-{component}"
    if not binary.exists():
        raise AssertionError(f"{binary} is missing: `make check` builds it (make build)")
    return binary


class RenderedSettingsLoadTest(unittest.TestCase):
    """Each service loads the settings the chart renders for it, with the secret files, and
    accepts them (`spruce-<service> check-config`), for the defaults and every environment."""

    def test_services_accept_the_rendered_settings(self):
        for label, values in [("defaults", {}), *((env, env_values(env)) for env in ENVIRONMENTS)]:
            with tempfile.TemporaryDirectory() as folder:
                folder = pathlib.Path(folder)
                values = copy.deepcopy(values)
                # The Secret's files, mounted where the test can write them.
                values.setdefault("secrets", {}).update(
                    {"source": "existingSecret", "mountPath": str(folder / "secrets"),
                     "database": {"secretName": "spruce-database", "mountPath": str(folder / "database"),
                                  "caConfigMap": "spruce-database-ca", "caMountPath": str(folder / "ca")}}
                )
                manifests = render(values)
                (folder / "secrets").mkdir()
                (folder / "database").mkdir()
                (folder / "ca").mkdir()
                (folder / "ca" / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
                for component in ("core", "search", "scheduler"):
                    (folder / "database" / component).write_text(f"test-{component}-password")
                    (folder / "database" / f"{component}-user").write_text(f"spruce_{component}_a")
                for name in ["amqp-url", "redis-url", "stripe-secret-key", "smtp-password", "push-token",
                             "analytics-hash-key"]:
                    (folder / "secrets" / name).write_text(f"test-{name}")
                # Fresh Ed25519 keys: the built-in development keys are refused here.
                for owner in ["auth", "gateway", "search", "scheduler"]:
                    private, public = folder / "secrets" / f"{owner}-private-key", folder / "secrets" / f"{owner}-public-key"
                    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", private], check=True)
                    subprocess.run(["openssl", "pkey", "-in", private, "-pubout", "-out", public], check=True)
                # What each environment's Terraform writes (data.tf, the connections secret):
                # Amazon MQ and ElastiCache, both with TLS, in AWS.
                if label == "defaults":
                    amqp, redis = "amqp://spruce:test@rabbitmq:5672/%2f", "redis://:test@redis:6379"
                else:
                    amqp = "amqps://spruce:test@b-1234.mq.eu-west-1.amazonaws.com:5671"
                    redis = "rediss://:test@master.spruce-e2e.abc123.euw1.cache.amazonaws.com:6379"
                (folder / "secrets" / "amqp-url").write_text(amqp)
                (folder / "secrets" / "redis-url").write_text(redis)
                for component in COMPONENTS:
                    with self.subTest(f"{label}: {component}"):
                        config = folder / component
                        config.mkdir()
                        (config / "default.toml").write_text(
                            [m for m in by_kind(manifests, "ConfigMap")
                             if m["metadata"]["name"] == f"spruce-{component}"][0]["data"]["default.toml"]
                        )
                        environment = {k: v for k, v in os.environ.items() if not k.startswith("SPRUCE")}
                        environment.update(
                            SPRUCE_CONFIG_DIR=str(config), SPRUCE_ENV=values.get("environment", "e2e")
                        )
                        result = subprocess.run(
                            [service_binary(component), "check-config"],
                            env=environment, capture_output=True, text=True, timeout=30,
                        )
                        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
                        self.assertIn("configuration ok", result.stdout)
                        if component != "scheduler" or label == "defaults":
                            continue
                        # Push to the log would write device tokens and messages there and
                        # call them sent: refused where production-like.
                        rendered = (config / "default.toml").read_text()
                        self.assertIn('"provider" = "http"', rendered)
                        (config / "default.toml").write_text(
                            rendered.replace('"provider" = "http"', '"provider" = "log"')
                        )
                        result = subprocess.run(
                            [service_binary(component), "check-config"],
                            env=environment, capture_output=True, text=True, timeout=30,
                        )
                        self.assertNotEqual(result.returncode, 0, result.stdout)
                        self.assertIn("push.provider", result.stderr)

    def test_a_development_key_is_refused_where_production_like_even_from_a_file(self):
        sys_path = str(ROOT / "crates" / "platform" / "src" / "keys.rs")
        source = pathlib.Path(sys_path).read_text()
        dev_private = source.split('pub const CORE_PRIVATE_KEY: &str = "')[1].split('";')[0]
        with tempfile.TemporaryDirectory() as folder:
            folder = pathlib.Path(folder)
            # Wrapped differently from the built-in text: recognised by the key, not the text.
            (folder / "key.pem").write_text(dev_private.replace("\n", "\r\n") + "\n")
            (folder / "default.toml").write_text(
                f'[auth]\nprivate_key_file = "{folder / "key.pem"}"\n'
                '[payments]\nprovider = "stripe"\n[payments.stripe]\nsecret_key = "sk_test"\n'
            )
            for environment, refused in [("prod", True), ("e2e", True), ("local", False)]:
                with self.subTest(environment):
                    env = {k: v for k, v in os.environ.items() if not k.startswith("SPRUCE")}
                    env.update(SPRUCE_CONFIG_DIR=str(folder), SPRUCE_ENV=environment)
                    result = subprocess.run(
                        [service_binary("core"), "check-config"], env=env, capture_output=True, text=True
                    )
                    self.assertEqual(result.returncode != 0, refused, result.stdout + result.stderr)
                    if refused:
                        self.assertIn("auth.private_key", result.stderr)
                        self.assertIn("development key", result.stderr)
                        self.assertNotIn(dev_private.splitlines()[1], result.stderr)

    def test_the_fake_payment_provider_is_refused_where_production_like(self):
        with tempfile.TemporaryDirectory() as folder:
            (pathlib.Path(folder) / "default.toml").write_text('[payments]\nprovider = "fake"\n')
            env = {k: v for k, v in os.environ.items() if not k.startswith("SPRUCE")}
            env.update(SPRUCE_CONFIG_DIR=folder, SPRUCE_ENV="staging")
            result = subprocess.run(
                [service_binary("core"), "check-config"], env=env, capture_output=True, text=True
            )
            self.assertNotEqual(result.returncode, 0)
            self.assertIn("payments.provider", result.stderr)

    def test_a_broken_setting_is_refused(self):
        with tempfile.TemporaryDirectory() as folder:
            (pathlib.Path(folder) / "default.toml").write_text('[payments]\nprovider = "bogus"\n')
            environment = {k: v for k, v in os.environ.items() if not k.startswith("SPRUCE")}
            environment.update(SPRUCE_CONFIG_DIR=folder)
            result = subprocess.run(
                [service_binary("core"), "check-config"], env=environment, capture_output=True, text=True
            )
            self.assertNotEqual(result.returncode, 0)
            self.assertIn("payments.provider", result.stderr)


class ComposeTest(unittest.TestCase):
    def setUp(self):
        self.compose = yaml.safe_load((ROOT / "docker/compose.yaml").read_text())
        self.services = self.compose["services"]

    def test_stack_has_every_part(self):
        for name in ["postgres", "rabbitmq", "redis", "otel-collector", "jaeger", "prometheus", *COMPONENTS]:
            self.assertIn(name, self.services)

    def test_start_order_refers_to_services_that_exist_and_have_healthchecks(self):
        for name, service in self.services.items():
            depends_on = service.get("depends_on") or {}
            if isinstance(depends_on, list):
                depends_on = {name: {"condition": "service_started"} for name in depends_on}
            for dependency, condition in depends_on.items():
                with self.subTest(f"{name} -> {dependency}"):
                    self.assertIn(dependency, self.services)
                    if condition["condition"] == "service_healthy":
                        self.assertIn("healthcheck", self.services[dependency])
                        self.assertFalse(self.services[dependency]["healthcheck"].get("disable"))

    def test_spruce_services_run_read_only_and_check_their_own_health(self):
        for name in COMPONENTS:
            service = self.services[name]
            self.assertTrue(service["read_only"])
            self.assertEqual(service["healthcheck"]["test"], ["CMD", "/usr/local/bin/service", "healthcheck"])
            self.assertEqual(service["build"]["args"]["SERVICE"], name)

    def test_each_image_is_built_by_one_service_only(self):
        # `up --build` builds every service's image in parallel: two services building one
        # tag fail the first `up` on a fresh machine. A service reusing a built image must
        # not be pulled (no registry has it).
        built = {}
        for name, service in self.services.items():
            if "build" in service:
                tag = service.get("image", f"spruce-{name}")
                with self.subTest(name):
                    self.assertNotIn(tag, built, f"{name} and {built.get(tag)} both build {tag}")
                built[tag] = name
        for name, service in self.services.items():
            if "build" not in service and service.get("image") in built:
                with self.subTest(name):
                    self.assertEqual(service.get("pull_policy"), "never", f"{name} reuses {service['image']}")
        self.assertIn("spruce-core:local", built)

    def test_each_service_is_told_where_its_upstreams_are(self):
        # Every in-cluster address the chart gives a service (core.url, search.url, ...)
        # has its SPRUCE__ variable in compose: the built-in default is 127.0.0.1.
        manifests = render({})
        for component in COMPONENTS:
            found = []

            def walk(prefix, table):
                for key, value in table.items():
                    if isinstance(value, dict):
                        walk(prefix + [key], value)
                    elif isinstance(value, str) and value.startswith("http://spruce-"):
                        found.append("SPRUCE__" + "__".join(p.upper() for p in prefix + [key]))

            walk([], settings_of(manifests, component))
            environment = self.services[component]["environment"]
            with self.subTest(component):
                self.assertTrue(found)
                for variable in found:
                    self.assertIn(variable, environment)
                    self.assertRegex(environment[variable], r"^http://(core|search|scheduler):\d+$")

    def test_mounted_configuration_exists(self):
        for name, service in self.services.items():
            for volume in service.get("volumes") or []:
                if volume.startswith("../"):
                    with self.subTest(f"{name}: {volume}"):
                        self.assertTrue((ROOT / "docker" / volume.split(":")[0]).resolve().exists())

    def test_prometheus_scrapes_every_service_port(self):
        prometheus = yaml.safe_load((ROOT / "deploy/observability/prometheus.yml").read_text())
        targets = {t for job in prometheus["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
        values = yaml.safe_load((CHART / "values.yaml").read_text())
        for component in COMPONENTS:
            self.assertIn(f"{component}:{values[component]['ports']['http']}", targets)

    def test_alerts_and_dashboard_read_metrics_every_broker_has(self):
        # Amazon MQ has no Prometheus endpoint: no rule or panel may need the broker's own.
        texts = {
            "alerts": (ROOT / "deploy/observability/alerts.yml").read_text(),
            "dashboard": (ROOT / "deploy/observability/grafana/spruce-overview.json").read_text(),
        }
        for name, text in texts.items():
            with self.subTest(name):
                self.assertNotIn("rabbitmq_", text)
        self.assertIn("messaging_queue_messages_ready", texts["alerts"])

    def test_dashboard_is_valid_json_with_panels(self):
        dashboard = json.loads((ROOT / "deploy/observability/grafana/spruce-overview.json").read_text())
        self.assertGreaterEqual(len(dashboard["panels"]), 6)


class TerraformTest(unittest.TestCase):
    MODULE = ROOT / "deploy/terraform/modules/spruce"

    def test_the_cluster_runs_the_kubernetes_the_chart_is_validated_against(self):
        variables = (self.MODULE / "variables.tf").read_text()
        default = re.search(r'variable "kubernetes_version" \{[^}]*default\s*=\s*"([0-9.]+)"', variables)
        self.assertIsNotNone(default)
        self.assertEqual(default.group(1), ".".join(KUBE_VERSION.split(".")[:2]))
        # EKS standard support ends about 14 months after a release; 1.33 came out in 2025.
        self.assertGreaterEqual(tuple(map(int, default.group(1).split("."))), (1, 33))

    def test_the_cluster_enforces_network_policies(self):
        cluster = (self.MODULE / "cluster.tf").read_text()
        addon = re.search(r'resource "aws_eks_addon" "vpc_cni" \{(.*?)\n\}', cluster, re.S)
        self.assertIsNotNone(addon, "the vpc-cni add-on")
        self.assertIn('addon_name                  = "vpc-cni"', addon.group(1))
        self.assertIn('enableNetworkPolicy = "true"', addon.group(1))

    def test_cd_can_reach_and_use_the_private_api(self):
        cluster = (self.MODULE / "cluster.tf").read_text()
        association = re.search(r'resource "aws_eks_access_policy_association" "deployer" \{(.*?)\n\}', cluster, re.S)
        self.assertIn("depends_on = [aws_eks_access_entry.deployer]", association.group(1))
        rule = re.search(r'resource "aws_vpc_security_group_ingress_rule" "api_from_deploy_runners" \{(.*?)\n\}', cluster, re.S)
        self.assertIsNotNone(rule)
        self.assertIn("cluster_security_group_id", rule.group(1))
        for environment in ENVIRONMENTS:
            stack = (ROOT / f"deploy/terraform/envs/{environment}/main.tf").read_text()
            self.assertRegex(stack, r"deploy_runner_security_group_ids\s*=\s*var\.deploy_runner_security_group_ids")

    def test_the_deploy_takes_what_only_terraform_knows_from_its_outputs(self):
        spec = importlib.util.spec_from_file_location("terraform_values", ROOT / "scripts/terraform_values.py")
        script = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(script)
        outputs_tf = (self.MODULE / "outputs.tf").read_text()
        read = ["database_host", "ecr_repositories", "services_role_arn", "vpc_cidr", "api_host", "uploads_bucket",
                "internal_domain"]
        for name in read:
            self.assertIn(f'output "{name}"', outputs_tf)
        registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
        outputs = {
            "spruce": {
                "value": {
                    "database_host": "spruce-e2e.abcdef.eu-west-1.rds.amazonaws.com",
                    "ecr_repositories": {c: f"{registry}/spruce-{c}" for c in COMPONENTS},
                    "services_role_arn": "arn:aws:iam::123456789012:role/spruce-e2e-services",
                    "vpc_cidr": "10.20.0.0/16",
                    "cluster_name": "spruce-e2e",
                    "api_host": "api.e2e.example.org",
                    "uploads_bucket": "spruce-e2e-uploads-123456789012",
                    "internal_domain": "internal.e2e.example.org",
                }
            }
        }
        generated = script.values(outputs)
        for environment in ENVIRONMENTS:
            with self.subTest(environment):
                own = env_values(environment)
                # No placeholder where Terraform knows the answer.
                self.assertNotIn("host", (own.get("config") or {}).get("database") or {})
                self.assertFalse((own.get("image") or {}).get("registry"))
                values = copy.deepcopy(own)
                for key, value in generated.items():
                    values[key] = {**(values.get(key) or {}), **value}
                manifests = render(values)
                self.assertEqual(settings_of(manifests, "core")["database"]["host"], outputs["spruce"]["value"]["database_host"])
                for deployment in services_of(manifests):
                    self.assertTrue(deployment["spec"]["template"]["spec"]["containers"][0]["image"].startswith(f"{registry}/spruce-"))
                for account in by_kind(manifests, "ServiceAccount"):
                    if account["metadata"]["name"] != "spruce-migrations":
                        self.assertEqual(account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"], outputs["spruce"]["value"]["services_role_arn"])
                (ingress,) = by_kind(manifests, "Ingress")
                self.assertEqual(ingress["spec"]["rules"][0]["host"], "api.e2e.example.org")
                for component in ("gateway", "scheduler"):
                    storage = settings_of(manifests, component)["storage"]
                    self.assertTrue(storage["url"].startswith("s3://spruce-e2e-uploads-123456789012"), storage)
                (ui,) = [s for s in by_kind(manifests, "Service") if s["metadata"]["name"] == "spruce-flagd-ui"]
                (flagd,) = [d for d in by_kind(manifests, "Deployment") if component_of(d) == "flagd"]
                (container,) = [c for c in flagd["spec"]["template"]["spec"]["containers"] if c["name"] == "ui"]
                self.assertIn({"name": "PHX_HOST", "value": "flags.internal.e2e.example.org"}, container["env"])
        steps = yaml.safe_load((ROOT / ".github/workflows/deploy.yml").read_text())["jobs"]["deploy"]["steps"]
        scripts = "\n".join(step.get("run", "") for step in steps)
        self.assertIn("output -json > out/terraform.json", scripts)
        self.assertIn("scripts/terraform_values.py out/terraform.json > out/terraform-values.json", scripts)
        self.assertLess(scripts.index("values-${{ inputs.environment }}.yaml"), scripts.index("-f out/terraform-values.json"))
        with self.assertRaises(ValueError):
            mixed = copy.deepcopy(outputs)
            mixed["spruce"]["value"]["ecr_repositories"]["core"] = "999.dkr.ecr.us-east-1.amazonaws.com/spruce-core"
            script.values(mixed)

    def test_the_log_bucket_accepts_access_logs_and_flow_logs(self):
        storage = (self.MODULE / "storage.tf").read_text()
        # S3 refuses to deliver access logs into a bucket with SSE-KMS default encryption.
        logs = re.search(r'resource "aws_s3_bucket_server_side_encryption_configuration" "logs" \{(.*?)\n\}', storage, re.S)
        self.assertIsNotNone(logs)
        self.assertIn('sse_algorithm = "AES256"', logs.group(1))
        shared = re.search(r'resource "aws_s3_bucket_server_side_encryption_configuration" "all" \{(.*?)\n\}', storage, re.S)
        self.assertNotIn("aws_s3_bucket.logs", shared.group(1))
        self.assertNotIn("local.buckets", shared.group(1))
        policy = re.search(r'resource "aws_s3_bucket_policy" "logs" \{(.*?)\n\}', storage, re.S)
        self.assertIsNotNone(policy)
        for principal in ("logging.s3.amazonaws.com", "delivery.logs.amazonaws.com"):
            self.assertIn(principal, policy.group(1))

    def test_environments_share_one_registry_and_create_no_repository(self):
        # Repositories of one name in two environment stacks of one account collide.
        for path in sorted((ROOT / "deploy/terraform").rglob("*.tf")):
            if path.parent.name != "registry":
                self.assertNotIn('resource "aws_ecr_repository"', path.read_text(), path)
        registry = (ROOT / "deploy/terraform/registry/main.tf").read_text()
        self.assertIn('resource "aws_ecr_repository" "service"', registry)
        self.assertIn('name                 = "spruce-${each.key}"', registry)
        self.assertIn('data "aws_ecr_repository" "service"', (self.MODULE / "cluster.tf").read_text())
        # CD pushes to the names the registry creates.
        push = yaml.safe_load((ROOT / ".github/workflows/cd.yml").read_text())["jobs"]["images"]["steps"]
        self.assertIn("/spruce-${{ matrix.service }}:", json.dumps(push))

    def test_the_platform_stack_installs_what_the_chart_expects(self):
        platform = (ROOT / "deploy/terraform/platform/main.tf").read_text()
        releases = dict(re.findall(r'resource "helm_release" "\w+" \{\n  name\s+= "([^"]+)"\n  namespace\s+= "([^"]+)"', platform))
        # ServiceMonitors and the PrometheusRule carry the operator's release label.
        self.assertEqual(releases.get("kube-prometheus-stack"), "monitoring")
        # The network policies admit the ingress controller from its namespace.
        self.assertEqual(releases.get("ingress-nginx"), "ingress-nginx")
        self.assertIn("cert-manager", releases)
        issuer = yaml.safe_load(
            (ROOT / "deploy/terraform/platform/charts/cluster-issuer/templates/clusterissuer.yaml")
            .read_text().replace("{{ required \"email\" .Values.email | quote }}", "x")
            .replace("{{ .Values.ingressClass | quote }}", "nginx")
        )
        self.assertIn('addon_name                  = "metrics-server"', (self.MODULE / "cluster.tf").read_text())
        for environment in ENVIRONMENTS:
            with self.subTest(environment):
                values = env_values(environment)
                values.setdefault("monitoring", {})["assumeAPI"] = True  # as once the operator is in
                manifests = render(values)
                monitors = by_kind(manifests, "ServiceMonitor") + by_kind(manifests, "PrometheusRule")
                self.assertTrue(monitors)
                for monitor in monitors:
                    self.assertEqual(monitor["metadata"]["labels"].get("release"), "kube-prometheus-stack")
                (ingress,) = by_kind(manifests, "Ingress")
                self.assertTrue(ingress["spec"]["tls"])
                self.assertEqual(ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"], issuer["metadata"]["name"])

    def test_the_platform_stack_gives_each_service_two_database_users_taking_turns(self):
        platform = (ROOT / "deploy/terraform/platform/main.tf").read_text()
        self.assertRegex(platform, r'services\s+= \["core", "search", "scheduler"\]')
        self.assertIn('name     = "spruce_${each.key}"', platform)
        self.assertIn('for pair in setproduct(local.services, ["a", "b"])', platform)
        # The owner role owns the database; the users log in and act as it.
        self.assertIn("owner    = postgresql_role.service[each.key].name", platform)
        self.assertIn("assume_role         = postgresql_role.service[each.value.service].name", platform)
        # The master password as RDS holds it now, never a copy that its rotation outdates.
        self.assertIn("data.aws_db_instance.main.master_user_secret[0].secret_arn", platform)
        self.assertRegex(platform, r'password\s+= jsondecode\(ephemeral\.aws_secretsmanager_secret_version\.master\.secret_string\)')
        secret = re.search(r'resource "kubernetes_secret_v1" "database" \{(.*?)\n\}', platform, re.S).group(1)
        values = yaml.safe_load((CHART / "values.yaml").read_text())
        self.assertIn(f'name      = "{values["secrets"]["database"]["secretName"]}"', secret)
        self.assertIn('"${service}-user" => "spruce_${service}_${local.active_slot}"', secret)
        self.assertIn("data_wo_revision = local.generation", secret)
        # Which user a generation rotates, as Terraform computes it: the other keeps working.
        for generation, active, versions in ((1, "a", (1, 0)), (2, "b", (1, 2)), (3, "a", (3, 2)), (6, "b", (5, 6))):
            slot = "a" if generation % 2 == 1 else "b"
            a = generation if generation % 2 == 1 else generation - 1
            b = generation if generation % 2 == 0 else generation - 1
            self.assertEqual((slot, (a, b)), (active, versions))
        self.assertIn('active_slot  = local.generation % 2 == 1 ? "a" : "b"', platform)

    def test_no_password_is_kept_in_terraform_state_where_a_write_only_argument_exists(self):
        platform = (ROOT / "deploy/terraform/platform/main.tf").read_text()
        data = (self.MODULE / "data.tf").read_text()
        self.assertIn('ephemeral "random_password" "database"', platform)
        self.assertNotIn('resource "random_password"', platform)
        self.assertIn("password_wo         = ephemeral.random_password.database[each.key].result", platform)
        self.assertNotIn('data "aws_secretsmanager_secret_version"', platform)
        self.assertIn("data_wo = merge(", platform)
        self.assertIn("secret_string_wo = jsonencode(", data)
        self.assertNotRegex(data, r"\n\s+secret_string\s+=")
        vault = (ROOT / "deploy/terraform/vault/main.tf").read_text()
        self.assertNotRegex(vault, r"\n\s+data_json\s+=")
        self.assertEqual(vault.count("data_json_wo "), 2)

    def test_each_environment_has_a_deploy_role_only_its_own_jobs_can_assume(self):
        bootstrap = (ROOT / "deploy/terraform/bootstrap/main.tf").read_text()
        self.assertIn('url            = "https://token.actions.githubusercontent.com"', bootstrap)
        # Exact subjects, never a wildcard: a branch's workflow cannot pass for an environment.
        self.assertNotIn('"repo:${var.github_repository}:*"', bootstrap)
        self.assertNotIn("StringLike", bootstrap.split('data "aws_iam_policy_document" "trust"')[1].split("\n}\n")[0])
        self.assertIn('"repo:${var.github_repository}:environment:${environment}"', bootstrap)
        self.assertIn('publish_subject = "repo:${var.github_repository}:ref:refs/heads/main"', bootstrap)
        self.assertIn('test     = "StringEquals"\n      variable = "token.actions.githubusercontent.com:sub"', bootstrap)
        deploy = re.search(r'resource "aws_iam_role_policy" "deploy" \{(.*?)\n\}', bootstrap, re.S).group(1)
        # That environment's state object and cluster, nothing else.
        self.assertIn('Resource = "${aws_s3_bucket.state.arn}/${each.key}/terraform.tfstate"', deploy)
        self.assertIn(':cluster/spruce-${each.key}"', deploy)
        self.assertNotIn("ecr:", deploy)
        self.assertNotIn("${aws_s3_bucket.state.arn}/*", bootstrap)
        publish = re.search(r'resource "aws_iam_role_policy" "publish" \{(.*?)\n\}', bootstrap, re.S).group(1)
        self.assertNotIn("state", publish)
        self.assertNotIn("eks:", publish)
        # Kubernetes rights: admin of the namespace spruce alone.
        cluster = (self.MODULE / "cluster.tf").read_text()
        association = re.search(r'resource "aws_eks_access_policy_association" "deployer" \{(.*?)\n\}', cluster, re.S).group(1)
        self.assertNotIn("ClusterAdmin", association)
        self.assertIn('type       = "namespace"', association)
        self.assertIn('namespaces = ["spruce"]', association)
        # ...which covers the Prometheus operator's kinds the chart renders too.
        platform = (ROOT / "deploy/terraform/platform/main.tf").read_text()
        self.assertIn('labels = { "rbac.authorization.k8s.io/aggregate-to-admin" = "true" }', platform)
        self.assertIn('resources  = ["servicemonitors", "prometheusrules"]', platform)
        # The workflows assume them: publishing on main, deploying in the environment.
        cd = (ROOT / ".github/workflows/cd.yml").read_text()
        self.assertEqual(cd.count("role-to-assume: ${{ vars.AWS_PUBLISH_ROLE_ARN }}"), 2)
        deploy_yml = yaml.safe_load((ROOT / ".github/workflows/deploy.yml").read_text())["jobs"]["deploy"]
        self.assertEqual(deploy_yml["environment"], "${{ inputs.environment }}")
        self.assertIn("role-to-assume: ${{ vars.AWS_DEPLOY_ROLE_ARN }}", (ROOT / ".github/workflows/deploy.yml").read_text())

    def test_the_state_bucket_is_named_with_the_account_and_given_to_every_backend(self):
        bootstrap = (ROOT / "deploy/terraform/bootstrap/main.tf").read_text()
        self.assertIn('bucket = "spruce-terraform-state-${data.aws_caller_identity.current.account_id}"', bootstrap)
        for path in sorted((ROOT / "deploy/terraform").rglob("*.tf")):
            backend = re.search(r'backend "s3" \{(.*?)\n  \}', path.read_text(), re.S)
            if backend:
                with self.subTest(str(path.relative_to(ROOT))):
                    self.assertNotIn("bucket", backend.group(1))
        steps = yaml.safe_load((ROOT / ".github/workflows/deploy.yml").read_text())["jobs"]["deploy"]["steps"]
        self.assertIn('-backend-config="bucket=spruce-terraform-state-$account"', json.dumps(steps).replace('\\"', '"'))

    def test_applying_an_environment_again_keeps_every_value_the_steps_set(self):
        for environment in ENVIRONMENTS:
            stack = (ROOT / f"deploy/terraform/envs/{environment}/main.tf").read_text()
            with self.subTest(environment):
                variables = re.findall(r'variable "(\w+)" \{(.*?)\n\}', stack, re.S)
                self.assertTrue(variables)
                for name, body in variables:
                    # No default to fall back to: a value left out is an error, not a reset.
                    self.assertNotIn("default", body, name)
                tfvars = (ROOT / f"deploy/terraform/envs/{environment}/terraform.tfvars").read_text()
                for name, _ in variables:
                    self.assertRegex(tfvars, rf"(?m)^{name}\s+=", name)
        cluster = (self.MODULE / "cluster.tf").read_text()
        self.assertEqual(cluster.count("ignore_changes = [scaling_config[0].desired_size]"), 2)

    def test_the_platform_stack_logs_in_to_the_cluster_for_each_call(self):
        platform = (ROOT / "deploy/terraform/platform/main.tf").read_text()
        self.assertNotIn("aws_eks_cluster_auth", platform)
        self.assertEqual(platform.count('command     = "aws"'), 2)
        self.assertIn('exec_args              = ["eks", "get-token", "--cluster-name", local.name', platform)

    def test_nodes_follow_pods(self):
        platform = (ROOT / "deploy/terraform/platform/main.tf").read_text()
        cluster = (self.MODULE / "cluster.tf").read_text()
        self.assertIn('resource "helm_release" "cluster_autoscaler"', platform)
        self.assertIn("autoDiscovery = { clusterName = local.name }", platform)
        self.assertIn('"eks.amazonaws.com/role-arn" = data.aws_iam_role.cluster_autoscaler.arn', platform)
        self.assertIn('name               = "${local.name}-cluster-autoscaler"', cluster)
        self.assertIn('cluster-autoscaler = ["system:serviceaccount:kube-system:cluster-autoscaler"]', cluster)
        # It may resize this cluster's node groups alone.
        self.assertIn('"aws:ResourceTag/k8s.io/cluster-autoscaler/${local.name}" = "owned"', cluster)

    def test_the_platform_stack_installs_vault_highly_available_and_self_unsealing(self):
        platform = (ROOT / "deploy/terraform/platform/main.tf").read_text()
        vault = re.search(r'resource "helm_release" "vault" \{(.*?)\n\}\n', platform, re.S)
        self.assertIsNotNone(vault, "the platform stack installs no Vault")
        vault = vault.group(1)
        for needle in ("enabled  = true\n        replicas = 3", "storage \"raft\"", "seal \"awskms\"",
                       "kms_key_id = \"${data.aws_kms_key.vault.id}\"", "injector = { enabled = true",
                       "\"eks.amazonaws.com/role-arn\" = data.aws_iam_role.vault.arn"):
            self.assertIn(needle, vault)
        cluster = (self.MODULE / "cluster.tf").read_text()
        self.assertIn('vault              = ["system:serviceaccount:vault:vault"]', cluster)
        self.assertIn('Action   = ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"]\n      Resource = aws_kms_key.vault.arn', cluster)
        stack = (ROOT / "deploy/terraform/vault/main.tf").read_text()
        self.assertIn('type = "kubernetes"', stack)
        self.assertIn('bound_service_account_names      = ["spruce-${each.key}"]', stack)
        self.assertIn('bound_service_account_namespaces = ["spruce"]', stack)
        self.assertIn('path \\"${vault_mount.kv.path}/data/${local.environment}/${name}\\"', stack)

    def test_clients_keep_their_own_address_through_the_load_balancer(self):
        platform = (ROOT / "deploy/terraform/platform/main.tf").read_text()
        self.assertIn('externalTrafficPolicy = "Local"', platform)
        # ingress-nginx is the one hop in front of the gateway, and only it may reach it.
        for environment in ENVIRONMENTS:
            manifests = render(env_values(environment))
            self.assertEqual(settings_of(manifests, "gateway")["trusted_proxies"], 1)
            (policy,) = [p for p in by_kind(manifests, "NetworkPolicy") if p["metadata"]["name"] == "spruce-gateway"]
            sources = policy["spec"]["ingress"][0]["from"]
            self.assertEqual(sources, [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}])

    def test_services_verify_the_database_certificate(self):
        platform = (ROOT / "deploy/terraform/platform/main.tf").read_text()
        self.assertIn("https://truststore.pki.rds.amazonaws.com/eu-west-1/eu-west-1-bundle.pem", platform)
        self.assertIn('data = { "ca.pem" = data.http.rds_ca.response_body }', platform)
        for environment in ENVIRONMENTS:
            database = settings_of(render(env_values(environment)), "core")["database"]
            self.assertEqual(database["ssl_mode"], "verify-full")
            self.assertTrue(database["ssl_root_cert"].endswith("/ca.pem"))

    def test_database_engines_pin_their_major_only(self):
        # Minor versions upgrade themselves; a pinned minor drifts from the running one.
        data = (self.MODULE / "data.tf").read_text()
        postgres = re.search(r'engine\s*=\s*"postgres"\s*\n(?:\s*#.*\n)*\s*engine_version\s*=\s*"([^"]+)"', data)
        self.assertIsNotNone(postgres)
        self.assertRegex(postgres.group(1), r"^[0-9]+$")


class WorkflowTest(unittest.TestCase):
    def load(self, name):
        return yaml.safe_load((ROOT / ".github/workflows" / name).read_text())

    def test_ci_runs_what_the_readme_and_ci_script_run(self):
        steps = self.load("ci.yml")["jobs"]["test"]["steps"]
        commands = [step.get("run", "") for step in steps]
        for command in ("make lint", "make test", "make check", "make ops-check"):
            self.assertIn(command, commands)

    def test_cd_promotes_e2e_then_staging_then_prod(self):
        jobs = self.load("cd.yml")["jobs"]
        self.assertEqual(jobs["deploy-e2e"]["needs"], ["gate", "images", "chart"])
        self.assertEqual(jobs["deploy-staging"]["needs"], ["gate", "deploy-e2e"])
        self.assertEqual(jobs["deploy-prod"]["needs"], ["gate", "deploy-staging"])
        for environment in ENVIRONMENTS:
            self.assertEqual(jobs[f"deploy-{environment}"]["with"]["environment"], environment)
            self.assertTrue((CHART / f"values-{environment}.yaml").exists())
        matrix = jobs["images"]["strategy"]["matrix"]["service"]
        self.assertEqual(sorted(matrix), sorted(COMPONENTS))

    def test_ci_can_run_rabbitmqctl_as_the_runners_user(self):
        # The bus tests call rabbitmqctl without sudo; Debian's wrapper refuses that.
        steps = self.load("ci.yml")["jobs"]["test"]["steps"]
        (rabbitmq,) = [step for step in steps if step.get("name") == "programs the tests start"]
        script = rabbitmq["run"]
        self.assertIn("ln -sf /usr/lib/rabbitmq/bin/rabbitmqctl /usr/local/bin/rabbitmqctl", script)
        self.assertIn("/var/lib/rabbitmq/.erlang.cookie", script)
        self.assertIn('"$HOME/.erlang.cookie"', script)
        last = script.strip().splitlines()[-1]
        self.assertTrue(last.startswith("rabbitmqctl"), "checked as the runner's user, without sudo")

    def test_cd_deploys_only_what_ci_passed_on_a_push_to_this_repositorys_main(self):
        workflow = yaml.load((ROOT / ".github/workflows/cd.yml").read_text(), Loader=yaml.BaseLoader)
        trigger = workflow["on"]["workflow_run"]
        self.assertEqual(trigger["workflows"], [self.load("ci.yml")["name"]])
        self.assertEqual(trigger["branches"], ["main"])
        self.assertNotIn("push", workflow["on"])
        jobs = workflow["jobs"]
        self.assertIn("gate", jobs, "no job checks the trigger before the others run")
        gate = jobs["gate"]["if"]
        for condition in ("github.event.workflow_run.conclusion == 'success'",
                          "github.event.workflow_run.event == 'push'",
                          "github.event.workflow_run.head_repository.full_name == github.repository",
                          "github.event_name == 'workflow_dispatch' && github.ref == 'refs/heads/main'"):
            self.assertIn(condition, gate)
        # A manual run still needs CI green on the commit.
        (tested,) = jobs["gate"]["steps"]
        self.assertIn("--workflow ci.yml --commit \"$SHA\"", tested["run"])
        self.assertIn("--status success", tested["run"])
        for name, job in jobs.items():
            if name != "gate":
                needs = job["needs"] if isinstance(job["needs"], list) else [job["needs"]]
                self.assertIn("gate", needs, name)
        for environment in ENVIRONMENTS:
            self.assertEqual(jobs[f"deploy-{environment}"]["with"]["image-tag"], "${{ needs.gate.outputs.sha }}")

    def test_ci_installs_every_program_the_tests_start(self):
        # What GitHub's ubuntu-24.04 image has without an install step, and from where.
        preinstalled = {"chown": "coreutils", "id": "coreutils", "kill": "procps", "runuser": "util-linux",
                        "python3": "actions/setup-python", "initdb": "the image's PostgreSQL",
                        "postgres": "the image's PostgreSQL"}
        packages = {"redis-server": "redis-server", "rabbitmqctl": "rabbitmq-server", "openssl": "openssl"}
        started = set()
        for path in list((ROOT / "crates").rglob("*.rs")) + list((ROOT / "tests").rglob("*.rs")):
            started.update(re.findall(r'Command::new\("([^"]+)"\)', path.read_text()))
        # db_password.rs runs PostgreSQL's own programs by path.
        started.update({"initdb", "postgres"})
        steps = self.load("ci.yml")["jobs"]["test"]["steps"]
        script = "\n".join(step.get("run", "") for step in steps)
        installed = set(re.search(r"apt-get install -y -q ([^\n]+)", script).group(1).split())
        for program in sorted(started):
            with self.subTest(program):
                self.assertTrue(program in preinstalled or program in packages, f"{program}: add it to ci.yml and here")
                if program in packages:
                    self.assertIn(packages[program], installed)
        self.assertIn("redis-server", started, "the Redis TLS test starts its own")
        self.assertNotIn("redis", self.load("ci.yml")["jobs"]["test"].get("services", {}), "6379 is the runner's own Redis")

    def test_environments_deploy_one_at_a_time_each_without_waiting_for_the_others(self):
        self.assertNotIn("concurrency", self.load("cd.yml"))
        deploy = self.load("deploy.yml")["jobs"]["deploy"]
        self.assertIn("inputs.environment", deploy["concurrency"]["group"])
        self.assertFalse(deploy["concurrency"]["cancel-in-progress"])

    def test_a_rerun_skips_pushing_an_image_tag_that_exists(self):
        steps = self.load("cd.yml")["jobs"]["images"]["steps"]
        (push,) = [step for step in steps if step.get("uses", "").startswith("docker/build-push-action")]
        self.assertIn("steps.pushed.outputs.exists != 'true'", push["if"])
        (probe,) = [step for step in steps if step.get("id") == "pushed"]
        self.assertIn("aws ecr describe-images", probe["run"])

    def test_the_image_sets_no_setting_the_chart_could_not_override(self):
        # Environment variables outrank the chart's config files (docs/configuration.md).
        lines = (ROOT / "docker/Dockerfile").read_text().splitlines()
        instructions = [line for line in lines if not line.lstrip().startswith("#")]
        self.assertFalse([line for line in instructions if "SPRUCE__" in line])

    def test_scripts_the_workflows_call_exist(self):
        text = (ROOT / ".github/workflows/deploy.yml").read_text()
        # The end-to-end suite after the e2e release, against the environment's own host.
        self.assertIn('make e2e BASE_URL="${{ vars.API_BASE_URL }}"', text)
        self.assertNotIn("spruce.example", text)
        self.assertIn('python3 scripts/e2e.py "$(BASE_URL)"', (ROOT / "Makefile").read_text())
        self.assertTrue((ROOT / "scripts/e2e.py").exists())
        self.assertIn("scripts/e2e.py", (ROOT / "scripts/compose-check.sh").read_text())
        self.assertTrue((ROOT / "docker/Dockerfile").exists())


if __name__ == "__main__":
    unittest.main()
