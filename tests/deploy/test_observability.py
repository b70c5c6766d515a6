"""Checks of the alerting configuration with Prometheus's and Alertmanager's own tools
(promtool and amtool, from Debian's prometheus and prometheus-alertmanager packages):
the rules load, their unit tests pass and cover every alert both ways, every alert has a
runbook, and the routes send each severity where it belongs.
"""

import json
import os
import pathlib
import re
import subprocess
import sys
import unittest

import yaml

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import test_deploy  # noqa: E402  (the chart renderer and its helpers)
from promql import metric_names  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
OBSERVABILITY = ROOT / "deploy/observability"
RULE_FILES = [OBSERVABILITY / "alerts.yml", OBSERVABILITY / "slo.yml"]
TESTS = sorted((OBSERVABILITY / "tests").glob("*.test.yml"))
ALERTMANAGER = OBSERVABILITY / "alertmanager.yml"
RUNBOOKS = ROOT / "docs/runbooks.md"


def run(*command):
    return subprocess.run(command, capture_output=True, text=True, check=False)


def alerting_rules():
    """(group name, rule) for every alerting rule of the rule files."""
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    yield group["name"], rule


def terraform_block(text, kind, name):
    """The body of `resource "<kind>" "<name>"` in Terraform source."""
    return re.search(rf'resource "{kind}" "{name}" \{{(.*?)\n\}}', text, re.S).group(1)


def heading_anchors(markdown):
    """GitHub's anchors of the second-level headings."""
    return {
        re.sub(r"[^a-z0-9 -]", "", line[3:].strip().lower()).replace(" ", "-")
        for line in markdown.splitlines()
        if line.startswith("## ")
    }


class RulesTest(unittest.TestCase):
    def test_rule_files_load(self):
        for path in RULE_FILES:
            with self.subTest(path.name):
                result = run("promtool", "check", "rules", str(path))
                self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_rule_unit_tests_pass(self):
        self.assertTrue(TESTS)
        result = run("promtool", "test", "rules", *map(str, TESTS))
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_every_alert_is_tested_firing_and_quiet(self):
        fired, quiet = set(), set()
        for path in TESTS:
            for case in yaml.safe_load(path.read_text())["tests"]:
                for check in case.get("alert_rule_test", []):
                    (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
        for _, rule in alerting_rules():
            with self.subTest(rule["alert"]):
                self.assertIn(rule["alert"], fired, "no test where it fires")
                self.assertIn(rule["alert"], quiet, "no test where it stays quiet")

    def test_every_alert_has_a_severity_and_a_runbook_section(self):
        anchors = heading_anchors(RUNBOOKS.read_text())
        alerts = set()
        for _, rule in alerting_rules():
            alerts.add(rule["alert"])
            with self.subTest(rule["alert"]):
                self.assertIn(rule["labels"]["severity"], ["page", "ticket"])
                self.assertEqual(
                    rule["annotations"]["runbook"], f"docs/runbooks.md#{rule['alert'].lower()}"
                )
                self.assertIn(rule["alert"].lower(), anchors)
        # No section for an alert that is gone.
        self.assertEqual(anchors - {alert.lower() for alert in alerts}, set())

    def test_every_gauge_an_alert_reads_is_watched_for_absence(self):
        # A gauge dies with the process that sets it (or stops when its reporting breaks),
        # and the alert on it goes quiet: each must have an absent() rule. Counters and
        # histograms read through rate() are quiet when there is no traffic, rightly.
        watched = set()
        read = set()
        for group, rule in alerting_rules():
            watched.update(re.findall(r"absent\((\w+)", rule["expr"]))
            if group == "spruce":
                read.update(
                    name
                    for name in metric_names(rule["expr"])
                    if not name.endswith(("_total", "_count", "_bucket"))
                )
        self.assertIn("messaging_queue_messages_ready", read)
        self.assertEqual(read - watched, set())

    def test_every_component_is_watched_for_being_down(self):
        down = {
            rule["labels"]["component"]
            for _, rule in alerting_rules()
            if rule["alert"] == "SpruceComponentDown"
        }
        self.assertEqual(down, {"gateway", "core", "search", "scheduler"})


class RoutesTest(unittest.TestCase):
    def route(self, *labels):
        result = run("amtool", "config", "routes", "test", f"--config.file={ALERTMANAGER}", *labels)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout.strip()

    def test_config_is_valid(self):
        result = run("amtool", "check-config", str(ALERTMANAGER))
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_each_severity_goes_to_its_channel(self):
        cases = {
            ("alertname=SpruceComponentDown", "severity=page", "component=core"): "slack-pages",
            ("alertname=SpruceConsumerLag", "severity=ticket"): "slack-tickets",
            # kube-prometheus-stack's own rules.
            ("alertname=KubePodCrashLooping", "severity=warning"): "slack-tickets",
            ("alertname=KubeNodeNotReady", "severity=critical"): "slack-pages",
            ("alertname=Watchdog", "severity=none"): "discard",
            ("alertname=InfoInhibitor", "severity=info"): "discard",
        }
        for labels, receiver in cases.items():
            with self.subTest(labels):
                self.assertEqual(self.route(*labels), receiver)

    def test_webhook_urls_are_read_from_secret_files(self):
        config = yaml.safe_load(ALERTMANAGER.read_text())
        slack = [c for r in config["receivers"] for c in r.get("slack_configs", [])]
        self.assertEqual(len(slack), 2)
        for receiver in slack:
            self.assertNotIn("api_url", receiver)
            self.assertTrue(
                receiver["api_url_file"].startswith("/etc/alertmanager/secrets/alertmanager-slack/")
            )
            self.assertTrue(receiver["send_resolved"])

    def test_a_component_down_holds_back_the_rest_of_its_alerts(self):
        config = yaml.safe_load(ALERTMANAGER.read_text())
        rules = [
            rule
            for rule in config["inhibit_rules"]
            if rule["source_matchers"] == ['alertname = "SpruceComponentDown"']
        ]
        self.assertEqual(len(rules), 1)
        self.assertEqual(rules[0]["equal"], ["component"])
        # Which works only if the alerts on a component's series carry its label.
        for group, rule in alerting_rules():
            if group == "spruce":
                with self.subTest(rule["alert"]):
                    self.assertRegex(rule["expr"], r"by \([^)]*\bcomponent\b")


class DashboardsTest(unittest.TestCase):
    def test_the_chart_ships_each_dashboard_for_grafanas_sidecar(self):
        sources = sorted((OBSERVABILITY / "grafana").glob("*.json"))
        self.assertGreaterEqual(len(sources), 5)
        for source in sources:
            with self.subTest(source.name):
                copy = test_deploy.CHART / "files/dashboards" / source.name
                self.assertEqual(copy.read_text(), source.read_text(), f"{copy} is a copy of {source}")
        # Off by default (a cluster without Grafana), on in every environment.
        off = [m for m in test_deploy.render() if "grafana_dashboard" in m["metadata"].get("labels", {})]
        self.assertEqual(off, [])
        for environment in test_deploy.ENVIRONMENTS:
            with self.subTest(environment):
                maps = [
                    m for m in test_deploy.render(test_deploy.env_values(environment))
                    if m["kind"] == "ConfigMap" and m["metadata"]["labels"].get("grafana_dashboard") == "1"
                ]
                shipped = {name: json.loads(text) for m in maps for name, text in m["data"].items()}
                self.assertEqual(sorted(shipped), [s.name for s in sources])
                for name, board in shipped.items():
                    self.assertTrue(board["uid"] and board["panels"], name)

    def test_each_journey_has_a_dashboard_on_its_objective(self):
        journeys = {
            rule["labels"]["journey"]
            for group in yaml.safe_load((OBSERVABILITY / "slo.yml").read_text())["groups"]
            for rule in group["rules"]
            if rule.get("record") == "journey:slo_objective:ratio"
        }
        queries = " ".join(
            target["expr"]
            for path in (OBSERVABILITY / "grafana").glob("spruce-journey-*.json")
            for panel in json.loads(path.read_text())["panels"]
            for target in panel["targets"]
        )
        for journey in journeys:
            with self.subTest(journey):
                self.assertIn(f'journey:sli_errors:ratio_rate5m{{journey="{journey}"}}', queries)


class ScalingTest(unittest.TestCase):
    """KEDA's ScaledObjects where the cluster has KEDA, the CPU HPAs where it has not."""

    @staticmethod
    def render(environment, assume_api):
        values = test_deploy.env_values(environment)
        values.setdefault("keda", {})["assumeAPI"] = assume_api
        return test_deploy.render(values)

    def test_search_and_the_scheduler_scale_on_work_where_keda_is(self):
        for environment in ["staging", "prod"]:
            with self.subTest(environment):
                manifests = self.render(environment, True)
                scaled = {test_deploy.component_of(m): m for m in test_deploy.by_kind(manifests, "ScaledObject")}
                self.assertEqual(sorted(scaled), ["scheduler", "search"])
                hpas = {test_deploy.component_of(m) for m in test_deploy.by_kind(manifests, "HorizontalPodAutoscaler")}
                self.assertFalse(hpas & set(scaled), "a component has both an HPA and a ScaledObject")
                for component, scaled_object in scaled.items():
                    spec = scaled_object["spec"]
                    self.assertEqual(spec["scaleTargetRef"]["name"], f"spruce-{component}")
                    (work,) = [t for t in spec["triggers"] if t["type"] == "prometheus"]
                    query = work["metadata"]["query"]
                    self.assertIn('namespace="spruce"', query)
                    self.assertIn(f'component="{component}"', query)
                    wanted = "messaging_queue_messages_ready" if component == "scheduler" else "rpc_server_duration_seconds_count"
                    self.assertEqual(metric_names(query), {wanted})
                    self.assertGreater(float(work["metadata"]["threshold"]), 0)

    def test_scaled_objects_are_valid_against_kedas_schema(self):
        tools = pathlib.Path(os.environ.get("DEPLOY_NODE_TOOLS", "/var/tmp/spruce-deploy-node"))
        self.assertTrue((tools / "node_modules").is_dir(), "run scripts/ops-tools.sh (make check does)")
        for environment in ["e2e", "staging", "prod"]:
            with self.subTest(environment):
                manifests = self.render(environment, True)
                result = subprocess.run(
                    ["node", str(tools / "keda-validate.mjs")],
                    input=json.dumps(manifests), capture_output=True, text=True, cwd=tools,
                )
                self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
                expected = 0 if environment == "e2e" else 2
                self.assertEqual(result.stdout.count("valid: ScaledObject/"), expected, result.stdout)
        # And the check can fail: a trigger's value must be a string.
        broken = [m for m in self.render("prod", True) if m["kind"] == "ScaledObject"]
        broken[0]["spec"]["triggers"][1]["metadata"]["value"] = 70
        result = subprocess.run(
            ["node", str(tools / "keda-validate.mjs")], input=json.dumps(broken), capture_output=True, text=True, cwd=tools
        )
        self.assertEqual(result.returncode, 1, result.stdout)

    def test_without_keda_the_cpu_hpas_stay(self):
        manifests = self.render("prod", False)
        self.assertEqual(test_deploy.by_kind(manifests, "ScaledObject"), [])
        hpas = {test_deploy.component_of(m) for m in test_deploy.by_kind(manifests, "HorizontalPodAutoscaler")}
        self.assertEqual(hpas, {"gateway", "core", "search", "scheduler"})

    def test_only_search_and_the_scheduler_may_scale_through_keda(self):
        values = test_deploy.env_values("prod")
        values["keda"] = {"assumeAPI": True}
        values["core"]["autoscaling"]["keda"] = {"enabled": True}
        with self.assertRaisesRegex(Exception, "core.autoscaling.keda: only search and the scheduler"):
            test_deploy.render(values)

    def test_the_platform_stack_installs_keda_and_lets_cd_manage_scaled_objects(self):
        platform = (ROOT / "deploy/terraform/platform/main.tf").read_text()
        self.assertIn('chart            = "keda"', platform)
        self.assertIn('resources  = ["scaledobjects"]', platform)
        values = yaml.safe_load((ROOT / "helm/spruce/values.yaml").read_text())
        self.assertIn("kube-prometheus-stack-prometheus.monitoring", values["keda"]["prometheusURL"])


def macro_arguments(text, macro):
    """The argument text of each `macro!(…)` call in Rust source (strings and nesting kept)."""
    for start in re.finditer(rf"\b{macro}!\s*\(", text):
        depth, index, in_string = 1, start.end(), False
        while depth:
            char = text[index]
            if in_string:
                if char == "\\":
                    index += 1
                elif char == '"':
                    in_string = False
            elif char == '"':
                in_string = True
            elif char in "([{":
                depth += 1
            elif char in ")]}":
                depth -= 1
            index += 1
        yield text[start.end() : index - 1]


def logged_fields(arguments):
    """The field names of a `tracing` event: the arguments before its message."""
    names, depth, current, in_string = set(), 0, "", False
    parts = []
    for char in arguments:
        if in_string:
            current += char
            in_string = char != '"' or current.endswith('\\"')
            continue
        if char == '"':
            in_string = True
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
            continue
        current += char
    parts.append(current.strip())
    for part in parts:
        if part.startswith('"'):
            break
        field = re.match(r"[%?]?\s*([a-z_][a-z0-9_.]*)\s*(=|$)", part)
        if field and not re.match(r"(target|parent|name)\s*:", part):
            names.add(field.group(1))
    return names


class LogsTest(unittest.TestCase):
    OPENSEARCH = OBSERVABILITY / "opensearch"

    def mapping(self):
        return json.loads((self.OPENSEARCH / "index-template.json").read_text())["template"]["mappings"]

    def test_every_field_logged_at_error_is_in_the_mapping(self):
        mapping = self.mapping()
        self.assertFalse(mapping["dynamic"], "unmapped fields stay unindexed, so none may be missed")
        mapped = set(mapping["properties"]["fields"]["properties"])
        logged = {}
        for path in sorted((ROOT / "crates").glob("*/src/**/*.rs")):
            for arguments in macro_arguments(path.read_text(), r"(?:tracing::)?error"):
                for field in logged_fields(arguments):
                    logged.setdefault(field, path.relative_to(ROOT))
        self.assertIn("error", logged)
        # `message` is the line's text: a field of that name would be lost under it.
        self.assertNotIn("message", logged, f"a field named message in {logged.get('message')}")
        for field, path in sorted(logged.items()):
            with self.subTest(field):
                self.assertIn(field, mapped, f"logged at ERROR in {path}")

    def test_the_line_keys_are_keywords_for_exact_search(self):
        properties = self.mapping()["properties"]
        for key in ["trace_id", "span_id", "level", "service", "target"]:
            with self.subTest(key):
                self.assertEqual(properties[key]["type"], "keyword")
        self.assertEqual(properties["timestamp"]["type"], "date")

    def test_fluent_bit_writes_the_daily_indices_the_template_and_retention_cover(self):
        platform = (ROOT / "deploy/terraform/platform/main.tf").read_text()
        prefix = re.search(r"Logstash_Prefix\s+(\S+)", platform).group(1)
        self.assertRegex(platform, r"Logstash_DateFormat %Y\.%m\.%d")
        template = json.loads((self.OPENSEARCH / "index-template.json").read_text())
        policy = json.loads((self.OPENSEARCH / "ism-policy.json").read_text())["policy"]
        self.assertEqual(template["index_patterns"], [f"{prefix}-*"])
        self.assertEqual(policy["ism_template"][0]["index_patterns"], [f"{prefix}-*"])
        (delete,) = [t for s in policy["states"] for t in s["transitions"] if t["state_name"] == "delete"]
        self.assertRegex(delete["conditions"]["min_index_age"], r"^\d+d$")
        # The pods' JSON lines become the mapped fields; only the namespace spruce is read.
        self.assertIn("Merge_Log    On", platform)
        self.assertIn("Path              /var/log/containers/*_spruce_*.log", platform)
        self.assertIn('index_patterns  = ["spruce-logs-*"]', platform)

    def test_the_log_index_is_private_encrypted_and_access_controlled(self):
        logs = (ROOT / "deploy/terraform/modules/spruce/logs.tf").read_text()
        domain = terraform_block(logs, "aws_opensearch_domain", "logs")
        self.assertIn("vpc_options {", domain)
        self.assertIn("internal_user_database_enabled = false", domain)
        self.assertIn("anonymous_auth_enabled         = false", domain)
        self.assertRegex(domain, r"encrypt_at_rest \{\n\s+enabled\s+= true")
        self.assertRegex(domain, r"node_to_node_encryption \{\n\s+enabled = true")
        self.assertIn("enforce_https       = true", domain)
        # Fluent Bit's role through its own ServiceAccount only.
        cluster = (ROOT / "deploy/terraform/modules/spruce/cluster.tf").read_text()
        self.assertIn('fluent-bit         = ["system:serviceaccount:logging:fluent-bit"]', cluster)
        self.assertIn('name        = "fluent-bit"', (ROOT / "deploy/terraform/platform/main.tf").read_text())

    def test_operations_shows_the_last_error_of_core_as_one_query(self):
        operations = (ROOT / "docs/operations.md").read_text()
        section = operations[operations.index("## Logs") :]
        self.assertIn('"service": "spruce-core"', section)
        self.assertIn('"level": "ERROR"', section)


class TracesTest(unittest.TestCase):
    PLATFORM = ROOT / "deploy/terraform/platform/main.tf"

    def collector(self):
        return yaml.safe_load((OBSERVABILITY / "otel-collector-k8s.yaml").read_text())

    def test_the_collector_keeps_errors_and_slow_traces_and_a_share_of_the_rest(self):
        config = self.collector()
        pipeline = config["service"]["pipelines"]["traces"]
        self.assertEqual(pipeline["processors"], ["memory_limiter", "tail_sampling", "batch"])
        policies = {p["type"]: p for p in config["processors"]["tail_sampling"]["policies"]}
        self.assertEqual(policies["status_code"]["status_code"]["status_codes"], ["ERROR"])
        self.assertLessEqual(policies["latency"]["latency"]["threshold_ms"], 500)
        self.assertLess(policies["probabilistic"]["probabilistic"]["sampling_percentage"], 100)
        self.assertEqual(config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"], "0.0.0.0:4317")

    def test_what_the_services_send_reaches_the_collector_whole_and_goes_on_to_tempo(self):
        platform = self.PLATFORM.read_text()
        collector = terraform_block(platform, "helm_release", "otel_collector")
        tempo = terraform_block(platform, "helm_release", "tempo")
        self.assertIn('fullnameOverride = "otel-collector"', collector)
        self.assertIn("replicaCount = 1", collector)
        self.assertIn('file("${path.module}/../../observability/otel-collector-k8s.yaml")', collector)
        self.assertIn("otel/opentelemetry-collector-contrib", collector)  # tail_sampling is contrib's
        for release in [collector, tempo]:
            self.assertIn("namespace  = helm_release.kube_prometheus_stack.namespace", release)
        self.assertRegex(tempo, r'name\s+= "tempo"')
        exporter = self.collector()["exporters"]["otlp/tempo"]["endpoint"]
        self.assertEqual(exporter, "tempo.monitoring:4317")
        for environment in test_deploy.ENVIRONMENTS:
            with self.subTest(environment):
                telemetry = test_deploy.env_values(environment)["config"]["telemetry"]
                self.assertEqual(telemetry["otlp_endpoint"], "http://otel-collector.monitoring:4317")
                # Tail sampling can keep only what it is sent.
                self.assertEqual(telemetry["sample_ratio"], 1.0)

    def test_a_log_lines_trace_id_opens_its_trace_in_grafana(self):
        platform = self.PLATFORM.read_text()
        stack = terraform_block(platform, "helm_release", "kube_prometheus_stack")
        logs = stack[stack.index('name = "Logs"') :]
        self.assertRegex(logs, r'field\s+= "trace_id"\n\s+datasourceUid = "tempo"\n\s+url\s+= "\$\$\{__value.raw\}"')
        self.assertRegex(stack, r'name = "Tempo"\n\s+uid  = "tempo"')
        self.assertIn('database        = "spruce-logs-*"', logs)
        self.assertIn('plugins        = ["grafana-opensearch-datasource"]', stack)
        # Grafana may read the logs and nothing more.
        self.assertIn("role_arn    = data.aws_iam_role.grafana.arn", platform)
        self.assertIn('grafana            = ["system:serviceaccount:monitoring:kube-prometheus-stack-grafana"]',
                      (ROOT / "deploy/terraform/modules/spruce/cluster.tf").read_text())


class InternalToolsTest(unittest.TestCase):
    CHART = ROOT / "deploy/terraform/platform/charts/internal-tools"
    PLATFORM = ROOT / "deploy/terraform/platform/main.tf"

    def render(self, values):
        return test_deploy.render(values, chart=self.CHART, name="internal-tools")

    def test_every_tool_is_on_the_internal_controller_behind_oauth2_proxy(self):
        import kubernetes_validate

        manifests = self.render({"domain": "internal.staging.spruce.example", "tools": {"logs": {"externalName": "vpc-logs.es.amazonaws.com"}, "flags": {"enabled": True}}})
        ingresses = [m for m in manifests if m["kind"] == "Ingress"]
        tools = [i for i in ingresses if i["metadata"]["name"] != "internal-oauth2-proxy"]
        self.assertEqual(sorted(i["metadata"]["name"] for i in tools), ["internal-flags", "internal-grafana", "internal-logs", "internal-vault"])
        hosts = set()
        for ingress in tools:
            with self.subTest(ingress["metadata"]["name"]):
                self.assertEqual(ingress["spec"]["ingressClassName"], "nginx-internal")
                annotations = ingress["metadata"]["annotations"]
                self.assertEqual(annotations["nginx.ingress.kubernetes.io/auth-url"], "http://oauth2-proxy.internal-tools.svc.cluster.local:80/oauth2/auth")
                self.assertIn("/oauth2/start", annotations["nginx.ingress.kubernetes.io/auth-signin"])
                (rule,) = ingress["spec"]["rules"]
                self.assertTrue(rule["host"].endswith(".internal.staging.spruce.example"))
                hosts.add(rule["host"])
        (proxy,) = [i for i in ingresses if i["metadata"]["name"] == "internal-oauth2-proxy"]
        self.assertEqual({r["host"] for r in proxy["spec"]["rules"]}, hosts)
        # The log index's Dashboards, through a name for the domain's endpoint.
        (external,) = [m for m in manifests if m["kind"] == "Service"]
        self.assertEqual(external["spec"]["externalName"], "vpc-logs.es.amazonaws.com")
        for manifest in manifests:
            kubernetes_validate.validate(manifest, "1.33.0", strict=True)

    def test_no_tool_can_be_put_on_the_public_controller(self):
        with self.assertRaisesRegex(Exception, "is the public controller's"):
            self.render({"domain": "internal.staging.spruce.example", "ingressClass": "nginx"})
        # Nor does the public chart publish anything but the API and its documents.
        for environment in test_deploy.ENVIRONMENTS:
            with self.subTest(environment):
                (ingress,) = test_deploy.by_kind(test_deploy.render(test_deploy.env_values(environment)), "Ingress")
                self.assertEqual(ingress["spec"]["ingressClassName"], "nginx")
                paths = {p["path"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]}
                self.assertFalse(paths & {"/grafana", "/vault", "/_dashboards", "/flags", "/"}, paths)

    def test_grafana_takes_the_signed_in_person_from_the_internal_controller_alone(self):
        platform = self.PLATFORM.read_text()
        stack = terraform_block(platform, "helm_release", "kube_prometheus_stack")
        self.assertRegex(stack, r'header_name\s+= "X-Auth-Request-Email"')
        # The header the internal Ingress passes on from oauth2-proxy's answer.
        manifests = self.render({"domain": "internal.e2e.spruce.example"})
        (grafana,) = [m for m in manifests if m["metadata"]["name"] == "internal-grafana"]
        self.assertIn("X-Auth-Request-Email", grafana["metadata"]["annotations"]["nginx.ingress.kubernetes.io/auth-response-headers"])
        # Nobody else may reach Grafana to claim a name in that header.
        self.assertRegex(stack, r"allowExternal\s+= false")
        self.assertIn('"kubernetes.io/metadata.name" = helm_release.ingress_nginx_internal.namespace', stack)

    def test_the_internal_controller_is_reached_from_the_vpc_alone(self):
        platform = self.PLATFORM.read_text()
        internal = terraform_block(platform, "helm_release", "ingress_nginx_internal")
        self.assertIn('"service.beta.kubernetes.io/aws-load-balancer-internal" = "true"', internal)
        self.assertIn("controllerValue = \"k8s.io/ingress-nginx-internal\"", internal)
        self.assertIn('internal_class  = "nginx-internal"', platform)
        proxy = terraform_block(platform, "helm_release", "oauth2_proxy")
        self.assertRegex(proxy, r"allowed-group\s+= var.sso.allowed_group")
        self.assertRegex(proxy, r"oidc-issuer-url\s+= var.sso.issuer_url")
        self.assertIn("private_zone = true", platform)
        vpn = (ROOT / "deploy/terraform/modules/spruce/internal.tf").read_text()
        self.assertIn("access_group_id        = var.client_vpn.group_id", vpn)
        self.assertIn('type              = "federated-authentication"', vpn)
        self.assertIn("split_tunnel           = true", vpn)
        self.assertIn("target_network_cidr    = var.vpc_cidr", vpn)


class PlatformTest(unittest.TestCase):
    PLATFORM = ROOT / "deploy/terraform/platform/main.tf"

    def release(self, name):
        return terraform_block(self.PLATFORM.read_text(), "helm_release", name)

    def test_what_eks_hides_is_neither_scraped_nor_alerted_on(self):
        stack = self.release("kube_prometheus_stack")
        for component in ["kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy"]:
            self.assertRegex(stack, rf"\n    {component}\s+= \{{ enabled = false \}}")
        for rules in ["etcd", "kubeControllerManager", "kubeSchedulerAlerting", "kubeSchedulerRecording", "kubeProxy"]:
            self.assertRegex(stack, rf"\n        {rules}\s+= false")

    def test_alertmanager_routes_by_the_repos_config_with_the_webhooks_it_reads(self):
        platform = self.PLATFORM.read_text()
        stack = self.release("kube_prometheus_stack")
        self.assertIn('config = yamldecode(file("${path.module}/../../observability/alertmanager.yml"))', stack)
        self.assertIn("secrets = [local.alertmanager_slack]", stack)
        self.assertRegex(platform, r'alertmanager_slack = "alertmanager-slack"')
        # Written write-only from Secrets Manager, where the envs stack made the secret.
        secret = terraform_block(platform, "kubernetes_secret_v1", "alertmanager_slack")
        self.assertIn("data_wo          = jsondecode(ephemeral.aws_secretsmanager_secret_version.alertmanager_slack.secret_string)", secret)
        self.assertIn('name = "${local.name}/${local.alertmanager_slack}"', platform)
        envs = (ROOT / "deploy/terraform/modules/spruce/data.tf").read_text()
        self.assertIn('name                    = "${local.name}/alertmanager-slack"', envs)
        # The keys the config reads are the ones docs/deploying.md tells a person to put.
        config = yaml.safe_load(ALERTMANAGER.read_text())
        keys = {pathlib.Path(c["api_url_file"]).name for r in config["receivers"] for c in r.get("slack_configs", [])}
        deploying = (ROOT / "docs/deploying.md").read_text()
        for key in keys:
            self.assertIn(f'"{key}": "', deploying)


if __name__ == "__main__":
    unittest.main()
