#!/usr/bin/env python3
"""`make ops-check`: proves on this machine that an alert reaches Slack and resolves, and
that the rules and dashboards read only metrics the services export.

Starts the four services as `make run` does (the debug build; PROFILE=release for the
other) and runs the end-to-end suite against them (scripts/e2e.py), so every journey has
left its metrics; checks that each metric a rule (deploy/observability/alerts.yml, slo.yml)
or a dashboard panel (deploy/observability/grafana) reads is on some service's /metrics.
Then Prometheus and Alertmanager from Debian's packages with the repo's own rules and routes
(alertmanager.yml), and a local Slack-shaped webhook sink: it stops the scheduler and waits
for the pages channel to receive `SpruceComponentDown` for the scheduler within the rule's
`for` plus a minute, starts the scheduler again and waits for the resolved message.

What differs from production is only what cannot be the same here: the scrape targets are
127.0.0.1 (prometheus.yml's hosts are compose's), the webhook URL files are the sink's, and
Alertmanager's grouping waits are seconds instead of minutes so the check takes about
three minutes. It listens on the services' usual ports: stop `make run` first. Its
databases (seeded afresh) and its object store are its own and go when it ends, so a run
never sees what `make run`, or an earlier run, left.
"""

import http.server
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests/deploy"))
import promql  # noqa: E402
OBSERVABILITY = ROOT / "deploy/observability"
BIN = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / os.environ.get("PROFILE", "debug")
SERVICES = {"core": 9091, "search": 9092, "scheduler": 9093, "gateway": 8080}
PROMETHEUS, ALERTMANAGER, SINK = 19090, 19093, 19099
# Seconds between scrapes and rule evaluations, and Alertmanager's waits, here.
TICK = 5


def log(message):
    print(f"ops-check: {message}", flush=True)


def fail(message):
    raise SystemExit(f"ops-check: FAILED: {message}")


def port_taken(port):
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def get(url, timeout=2):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read()


def ready(url):
    try:
        return get(url)[0] == 200
    except OSError:
        return False


def wait_until(what, check, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(1)
    fail(f"{what}: not within {seconds} s")


class Sink(http.server.BaseHTTPRequestHandler):
    """Keeps every message posted to /pages or /tickets, as Slack's webhooks receive them."""

    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        Sink.received.append((time.monotonic(), self.path.strip("/"), json.loads(body)))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def find_message(channel, status, alertname, component, since):
    for at, path, message in Sink.received:
        if at < since or path != channel:
            continue
        for attachment in message.get("attachments", []):
            title, text = attachment.get("title", ""), attachment.get("text", "")
            if f"[{status}]" in title and alertname in text and f"({component})" in text:
                return at, attachment
    return None


def prometheus_config(work):
    config = yaml.safe_load((OBSERVABILITY / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": f"{TICK}s", "evaluation_interval": f"{TICK}s"}
    config["rule_files"] = [str(OBSERVABILITY / "alerts.yml"), str(OBSERVABILITY / "slo.yml")]
    config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{ALERTMANAGER}"]}]}]}
    # RabbitMQ's own exporter is not enabled on a development broker; the rules do not
    # need it (they read what the consumers report).
    config["scrape_configs"] = [job for job in config["scrape_configs"] if job["job_name"] == "spruce"]
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            static["targets"] = [re.sub(r"^[^:]+:", "127.0.0.1:", t) for t in static["targets"]]
    path = work / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def alertmanager_config(work):
    config = yaml.safe_load((OBSERVABILITY / "alertmanager.yml").read_text())
    for receiver in config["receivers"]:
        for slack in receiver.get("slack_configs", []):
            channel = pathlib.Path(slack["api_url_file"]).name
            url_file = work / f"slack-{channel}"
            url_file.write_text(f"http://127.0.0.1:{SINK}/{channel}\n")
            slack["api_url_file"] = str(url_file)

    def shorten(route):
        if "group_wait" in route:
            route["group_wait"] = f"{TICK}s"
        if "group_interval" in route:
            route["group_interval"] = f"{2 * TICK}s"
        for child in route.get("routes", []):
            shorten(child)

    shorten(config["route"])
    path = work / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, width=1000))
    check = subprocess.run(["amtool", "check-config", str(path)], capture_output=True, text=True)
    if check.returncode != 0:
        fail(f"the derived Alertmanager config is invalid: {check.stdout}{check.stderr}")
    return path


def rule_for(alertname):
    for group in promql.rule_groups():
        for rule in group["rules"]:
            if rule.get("alert") == alertname:
                value, unit = re.fullmatch(r"(\d+)([smh])", rule["for"]).groups()
                return int(value) * {"s": 1, "m": 60, "h": 3600}[unit]
    fail(f"no rule {alertname}")


def check_metrics_are_exported():
    names = set(promql.recorded())
    for port in SERVICES.values():
        names |= promql.exported(get(f"http://127.0.0.1:{port}/metrics")[1].decode())
    missing = [
        f"{where}: {name}"
        for where, expr in promql.queries()
        for name in sorted(promql.metric_names(expr) - names)
    ]
    if missing:
        fail("rules or dashboards read metrics no service exports:\n  " + "\n  ".join(missing))
    log(f"every rule and dashboard query reads metrics the services export ({len(names)} names)")


def main():
    taken = [p for p in [*SERVICES.values(), 50051, 50052, 50053, PROMETHEUS, ALERTMANAGER, SINK] if port_taken(p)]
    if taken:
        fail(f"ports {taken} are taken (a running make run?); stop it first")
    work = pathlib.Path(tempfile.mkdtemp(prefix="spruce-ops-check-"))
    log(f"logs and configuration in {work}")
    processes = {}

    def start(name, command, env=None):
        output = open(work / f"{name}.log", "ab")
        processes[name] = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )

    service_env = {"SPRUCE__TELEMETRY__LOG_FORMAT": "json", "SPRUCE__STORAGE__URL": f"file://{work}/objects"}
    run_id = work.name.rsplit("-", 1)[-1].lower()
    databases = {name: f"spruce_ops_{re.sub('[^a-z0-9]', '', run_id)}_{name}" for name in ("core", "search", "scheduler")}

    def env_of(name):
        return {**service_env, **({"SPRUCE__DATABASE__NAME": databases[name]} if name in databases else {})}

    def start_service(name):
        start(name, [str(BIN / f"spruce-{name}"), "serve"], env_of(name))
        port = SERVICES[name]
        wait_until(f"{name} ready", lambda: ready(f"http://127.0.0.1:{port}/readyz"), 90)

    sink = http.server.ThreadingHTTPServer(("127.0.0.1", SINK), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    try:
        seed = subprocess.run([str(BIN / "spruce-core"), "seed"], capture_output=True, text=True, env={**os.environ, **env_of("core")})
        if seed.returncode != 0:
            fail(f"spruce-core seed: {seed.stdout}{seed.stderr}")
        for name in SERVICES:
            start_service(name)
        log("the four services are ready; the end-to-end suite runs against them")
        suite = subprocess.run(
            [sys.executable, str(ROOT / "scripts/e2e.py"), f"http://127.0.0.1:{SERVICES['gateway']}"],
            capture_output=True, text=True,
        )
        if suite.returncode != 0:
            fail(f"the end-to-end suite failed:\n{suite.stdout[-3000:]}{suite.stderr[-3000:]}")
        check_metrics_are_exported()
        start(
            "prometheus",
            [
                "prometheus",
                f"--config.file={prometheus_config(work)}",
                f"--storage.tsdb.path={work / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{PROMETHEUS}",
            ],
        )
        start(
            "alertmanager",
            [
                "prometheus-alertmanager",
                f"--config.file={alertmanager_config(work)}",
                f"--storage.path={work / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{ALERTMANAGER}",
                "--cluster.listen-address=",
            ],
        )
        api = f"http://127.0.0.1:{PROMETHEUS}/api/v1"

        def query(expr):
            url = f"{api}/query?{urllib.parse.urlencode({'query': expr})}"
            try:
                return json.loads(get(url)[1])["data"]["result"]
            except (OSError, KeyError, ValueError):
                return []

        wait_until("Prometheus scraping all four services", lambda: len(query("up == 1")) == 4, 60)
        wait_until("Alertmanager ready", lambda: ready(f"http://127.0.0.1:{ALERTMANAGER}/-/ready"), 30)
        log("Prometheus scrapes the four services; Alertmanager is ready")

        hold = rule_for("SpruceComponentDown")
        processes["scheduler"].send_signal(signal.SIGTERM)
        processes["scheduler"].wait(timeout=60)
        stopped = time.monotonic()
        log(f"scheduler stopped; waiting for the page (the rule holds {hold} s, plus a minute)")
        at, firing = wait_until(
            "the firing message in the pages channel",
            lambda: find_message("pages", "FIRING", "SpruceComponentDown", "scheduler", stopped),
            hold + 60,
        )
        log(f"paged {at - stopped:.0f} s after the scheduler stopped: {firing['title']!r}")
        log(f"  {firing['text'].strip()!r}")

        start_service("scheduler")
        restarted = time.monotonic()
        log("scheduler started again; waiting for the resolved message")
        at, resolved = wait_until(
            "the resolved message in the pages channel",
            lambda: find_message("pages", "RESOLVED", "SpruceComponentDown", "scheduler", restarted),
            60,
        )
        log(f"resolved {at - restarted:.0f} s after the scheduler was back: {resolved['title']!r}")
        others = sorted({a.get("title", "") for _, _, m in Sink.received for a in m.get("attachments", [])})
        log(f"every message the sink received: {others}")
        log("passed")
    except BaseException:
        for name in processes:
            tail = (work / f"{name}.log").read_text(errors="replace").splitlines()[-15:]
            print(f"--- {name} (last lines of {work / (name + '.log')})", file=sys.stderr)
            print("\n".join(tail), file=sys.stderr)
        raise
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        sink.shutdown()
        for database in databases.values():
            subprocess.run(
                ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-q", "-c",
                 f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'],
                capture_output=True,
            )


if __name__ == "__main__":
    main()
