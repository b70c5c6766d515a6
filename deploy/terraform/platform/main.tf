# What runs inside an environment's cluster and database, applied after its envs/<env> stack
# from a machine inside that VPC (the EKS API and RDS are private: a CD runner of that
# environment). One Terraform workspace per environment, named as it is:
#
#   terraform init -backend-config=bucket=spruce-terraform-state-<account id>
#   terraform workspace select -or-create staging
#   terraform apply -var-file=staging.tfvars
#
# <env>.tfvars beside this file, committed, holds every variable: an apply never resets one.
#
# - the cluster add-ons the chart expects: ingress-nginx (behind an NLB that keeps the
#   client's address), cert-manager with a Let's Encrypt ClusterIssuer (the Ingress's TLS
#   certificate), kube-prometheus-stack (release name kube-prometheus-stack: the
#   ServiceMonitors and PrometheusRule carry its label; its Alertmanager posts to Slack),
#   KEDA (the ScaledObjects of search and the scheduler), Fluent Bit (the services' logs
#   into the log index, whose template, retention and writer role it also installs), the
#   OpenTelemetry Collector with tail sampling and Tempo (traces; Grafana reads both), the
#   cluster autoscaler (nodes follow the pods the HPAs add) and Vault (HA on raft,
#   unsealed by KMS, the agent injector; deploy/terraform/vault configures it).
#   metrics-server is an EKS add-on of the envs/<env> stack.
# - the services' database logins: per service a role spruce_<service> that owns its
#   database and logs in as nobody, and two login users spruce_<service>_a and _b that
#   take turns. Raising database_password_generation gives the user not in use a new
#   password, then points the Secret `spruce-database` (keys <service> and
#   <service>-user) at it: the services read both files again for new connections
#   (database.password_recheck) while open ones stay logged in, and the other user
#   keeps working meanwhile, so no login fails at any moment. The passwords are ephemeral
#   and written write-only: none is in the state. Terraform logs in to PostgreSQL as the
#   RDS master user with the password Secrets Manager holds now, so RDS rotating it every
#   7 days breaks nothing.
# - the RDS CA bundle as the ConfigMap `spruce-database-ca` (ssl_mode verify-full).
terraform {
  required_version = ">= 1.11"
  # terraform init -backend-config=bucket=spruce-terraform-state-<account id>
  backend "s3" {
    key          = "platform/terraform.tfstate" # per workspace: env:/<workspace>/platform/…
    region       = "eu-west-1"
    encrypt      = true
    use_lockfile = true
  }
  required_providers {
    aws        = { source = "hashicorp/aws", version = "~> 5.100" }
    helm       = { source = "hashicorp/helm", version = "~> 2.17" }
    http       = { source = "hashicorp/http", version = "~> 3.4" }
    kubernetes = { source = "hashicorp/kubernetes", version = "~> 2.37" }
    opensearch = { source = "opensearch-project/opensearch", version = "~> 2.3" }
    postgresql = { source = "cyrilgdn/postgresql", version = "~> 1.26" }
    random     = { source = "hashicorp/random", version = "~> 3.7" }
  }
}

locals {
  environment        = terraform.workspace
  name               = "spruce-${local.environment}"
  services           = ["core", "search", "scheduler"]
  alertmanager_slack = "alertmanager-slack"
}

variable "acme_email" {
  description = "Let's Encrypt's contact for the certificates (expiry warnings)"
  type        = string
}

variable "database_password_generation" {
  description = "Raise by one to rotate the services' database passwords (in <env>.tfvars)"
  type        = number
}

variable "slack_webhooks_generation" {
  description = "Raise by one to copy the Slack webhooks from Secrets Manager again (in <env>.tfvars)"
  type        = number
}

variable "dns_zone_name" {
  description = "The public Route 53 zone of the envs stack (its dns_zone_name); the tools live in internal.<env>.<it>"
  type        = string
}

variable "sso" {
  description = "The internal tools' single sign-on: the identity provider's OIDC issuer and the group admitted"
  type = object({
    issuer_url    = string
    allowed_group = string
  })
  validation {
    condition     = startswith(var.sso.issuer_url, "https://") && var.sso.allowed_group != ""
    error_message = "sso needs the issuer's https URL and the group the tools admit"
  }
}

variable "sso_generation" {
  description = "Raise by one to copy the SSO client from Secrets Manager again (in <env>.tfvars)"
  type        = number
}

variable "chart_versions" {
  description = "The add-ons' Helm chart versions"
  type        = map(string)
  default = {
    ingress-nginx           = "4.12.1"
    cert-manager            = "v1.17.2"
    kube-prometheus-stack   = "70.4.2"
    cluster-autoscaler      = "9.46.6"
    keda                    = "2.17.2"
    fluent-bit              = "0.48.9"
    tempo                   = "1.18.2"
    opentelemetry-collector = "0.117.1"
    oauth2-proxy            = "7.12.6"
    vault                   = "0.30.0"
  }
}

provider "aws" {
  region = "eu-west-1"
  default_tags {
    tags = { project = "spruce", environment = local.environment }
  }
}

check "workspace_is_an_environment" {
  assert {
    condition     = contains(["e2e", "staging", "prod"], terraform.workspace)
    error_message = "select the environment's workspace first: terraform workspace select -or-create e2e|staging|prod"
  }
}

data "aws_eks_cluster" "main" {
  name = local.name
}

data "aws_db_instance" "main" {
  db_instance_identifier = local.name
}

# RDS manages the master password and rotates it; read what it is now, at every apply, and
# keep it out of the state (ephemeral).
ephemeral "aws_secretsmanager_secret_version" "master" {
  secret_id = data.aws_db_instance.main.master_user_secret[0].secret_arn
}

data "aws_iam_role" "cluster_autoscaler" {
  name = "${local.name}-cluster-autoscaler"
}

data "aws_iam_role" "vault" {
  name = "${local.name}-vault"
}

data "aws_kms_key" "vault" {
  key_id = "alias/${local.name}-vault"
}

# A token from `aws eks get-token` at each call, not one read at plan time: a token lasts
# 15 minutes, and an apply (kube-prometheus-stack alone) can take longer.
locals {
  kubernetes = {
    host                   = data.aws_eks_cluster.main.endpoint
    cluster_ca_certificate = base64decode(data.aws_eks_cluster.main.certificate_authority[0].data)
    exec_args              = ["eks", "get-token", "--cluster-name", local.name, "--region", "eu-west-1"]
  }
}

provider "kubernetes" {
  host                   = local.kubernetes.host
  cluster_ca_certificate = local.kubernetes.cluster_ca_certificate
  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "aws"
    args        = local.kubernetes.exec_args
  }
}

provider "helm" {
  kubernetes {
    host                   = local.kubernetes.host
    cluster_ca_certificate = local.kubernetes.cluster_ca_certificate
    exec {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "aws"
      args        = local.kubernetes.exec_args
    }
  }
}

provider "postgresql" {
  host      = data.aws_db_instance.main.address
  port      = data.aws_db_instance.main.port
  username  = jsondecode(ephemeral.aws_secretsmanager_secret_version.master.secret_string)["username"]
  password  = jsondecode(ephemeral.aws_secretsmanager_secret_version.master.secret_string)["password"]
  sslmode   = "require"
  superuser = false # RDS's master is not a PostgreSQL superuser
}

# ---------------------------------------------------------------- cluster add-ons

resource "helm_release" "ingress_nginx" {
  name             = "ingress-nginx"
  namespace        = "ingress-nginx"
  create_namespace = true
  repository       = "https://kubernetes.github.io/ingress-nginx"
  chart            = "ingress-nginx"
  version          = var.chart_versions["ingress-nginx"]
  atomic           = true
  values = [yamlencode({
    controller = {
      replicaCount = 2
      service = {
        annotations = { "service.beta.kubernetes.io/aws-load-balancer-type" = "nlb" }
        # The NLB sends each client to a node with a controller pod, which sees the
        # client's own address and writes it into X-Forwarded-For (the gateway trusts that
        # one hop: trusted_proxies = 1). `Cluster` would hop through any node and SNAT,
        # and every client would look like a node to the per-address throttles.
        externalTrafficPolicy = "Local"
      }
    }
  })]
}

resource "helm_release" "cert_manager" {
  name             = "cert-manager"
  namespace        = "cert-manager"
  create_namespace = true
  repository       = "https://charts.jetstack.io"
  chart            = "cert-manager"
  version          = var.chart_versions["cert-manager"]
  atomic           = true
  values           = [yamlencode({ crds = { enabled = true } })]
}

# The chart's Ingress asks for it (values-<env>.yaml: cert-manager.io/cluster-issuer).
resource "helm_release" "cluster_issuer" {
  name      = "letsencrypt"
  namespace = "cert-manager"
  chart     = "${path.module}/charts/cluster-issuer"
  atomic    = true
  values = [yamlencode({
    email        = var.acme_email
    ingressClass = "nginx"
  })]
  depends_on = [helm_release.cert_manager, helm_release.ingress_nginx]
}

# Prometheus, Alertmanager and Grafana. EKS runs the control plane out of reach: its
# scheduler, controller manager and etcd have no endpoint to scrape, and kube-proxy serves
# its metrics on the node's loopback only, so their scrapes and rules are off (left on,
# their "down" alerts fire from day one). Alertmanager routes by
# deploy/observability/alertmanager.yml, reading the Slack webhooks from the Secret below;
# Grafana's sidecar loads the dashboards the Spruce chart ships as ConfigMaps.
resource "helm_release" "kube_prometheus_stack" {
  name             = "kube-prometheus-stack"
  namespace        = "monitoring"
  create_namespace = true
  repository       = "https://prometheus-community.github.io/helm-charts"
  chart            = "kube-prometheus-stack"
  version          = var.chart_versions["kube-prometheus-stack"]
  atomic           = true
  timeout          = 900
  values = [yamlencode({
    kubeControllerManager = { enabled = false }
    kubeScheduler         = { enabled = false }
    kubeEtcd              = { enabled = false }
    kubeProxy             = { enabled = false }
    defaultRules = {
      rules = {
        etcd                   = false
        kubeControllerManager  = false
        kubeSchedulerAlerting  = false
        kubeSchedulerRecording = false
        kubeProxy              = false
      }
    }
    grafana = {
      # The chart's dashboards are ConfigMaps in the namespace spruce.
      sidecar = { dashboards = { searchNamespace = "ALL" } }
      # Signs its requests to the log index with its own role (envs/<env>: tracing.tf).
      serviceAccount = { annotations = { "eks.amazonaws.com/role-arn" = data.aws_iam_role.grafana.arn } }
      plugins        = ["grafana-opensearch-datasource"]
      # Single sign-on: oauth2-proxy in front (charts/internal-tools) has signed the person
      # in; the internal controller passes who it is, and Grafana takes it. Only that
      # controller may reach Grafana, so nobody else can claim a name in the header.
      "grafana.ini" = {
        server = { root_url = "https://grafana.${local.internal_domain}" }
        "auth.proxy" = {
          enabled         = true
          header_name     = "X-Auth-Request-Email"
          header_property = "email"
          auto_sign_up    = true
        }
        users = { auto_assign_org_role = "Viewer" }
      }
      networkPolicy = {
        enabled                    = true
        allowExternal              = false
        explicitNamespacesSelector = { matchLabels = { "kubernetes.io/metadata.name" = helm_release.ingress_nginx_internal.namespace } }
      }
      # Traces in Tempo, logs in the index; a log line's trace_id opens its trace, and a
      # trace lists its log lines.
      additionalDataSources = [
        {
          name = "Tempo"
          uid  = "tempo"
          type = "tempo"
          url  = "http://tempo.monitoring:3100"
          jsonData = {
            tracesToLogsV2 = {
              datasourceUid   = "logs"
              filterByTraceID = false
              customQuery     = true
              query           = "trace_id:\"$${__trace.traceId}\""
            }
          }
        },
        {
          name = "Logs"
          uid  = "logs"
          type = "grafana-opensearch-datasource"
          url  = "https://${data.aws_opensearch_domain.logs.endpoint}"
          jsonData = {
            database        = "spruce-logs-*"
            flavor          = "opensearch"
            version         = "2.17.0"
            timeField       = "timestamp"
            logMessageField = "message"
            logLevelField   = "level"
            sigV4Auth       = true
            sigV4AuthType   = "default"
            sigV4Region     = "eu-west-1"
            dataLinks = [{
              field         = "trace_id"
              datasourceUid = "tempo"
              url           = "$${__value.raw}"
            }]
          }
        },
      ]
    }
    alertmanager = {
      config = yamldecode(file("${path.module}/../../observability/alertmanager.yml"))
      alertmanagerSpec = {
        # Mounted at /etc/alertmanager/secrets/alertmanager-slack/, where the config reads.
        secrets = [local.alertmanager_slack]
      }
    }
  })]
}

# The Slack webhooks as Secrets Manager holds them (the envs stack makes the secret, a person
# its value), written write-only: raise slack_webhooks_generation in <env>.tfvars after
# changing them.
data "aws_secretsmanager_secret" "alertmanager_slack" {
  name = "${local.name}/${local.alertmanager_slack}"
}

ephemeral "aws_secretsmanager_secret_version" "alertmanager_slack" {
  secret_id = data.aws_secretsmanager_secret.alertmanager_slack.arn
}

resource "kubernetes_secret_v1" "alertmanager_slack" {
  metadata {
    name      = local.alertmanager_slack
    namespace = helm_release.kube_prometheus_stack.namespace
  }
  data_wo          = jsondecode(ephemeral.aws_secretsmanager_secret_version.alertmanager_slack.secret_string)
  data_wo_revision = var.slack_webhooks_generation
}

# KEDA: the chart's ScaledObjects scale search and the scheduler on their work, read from
# Prometheus (helm/spruce: keda, autoscaling.keda).
resource "helm_release" "keda" {
  name             = "keda"
  namespace        = "keda"
  create_namespace = true
  repository       = "https://kedacore.github.io/charts"
  chart            = "keda"
  version          = var.chart_versions["keda"]
  atomic           = true
}

resource "helm_release" "cluster_autoscaler" {
  name       = "cluster-autoscaler"
  namespace  = "kube-system"
  repository = "https://kubernetes.github.io/autoscaler"
  chart      = "cluster-autoscaler"
  version    = var.chart_versions["cluster-autoscaler"]
  atomic     = true
  values = [yamlencode({
    cloudProvider = "aws"
    awsRegion     = "eu-west-1"
    autoDiscovery = { clusterName = local.name }
    rbac = {
      serviceAccount = {
        name        = "cluster-autoscaler"
        annotations = { "eks.amazonaws.com/role-arn" = data.aws_iam_role.cluster_autoscaler.arn }
      }
    }
    extraArgs = {
      balance-similar-node-groups = true
      skip-nodes-with-system-pods = false
      expander                    = "least-waste"
    }
  })]
}

# Vault: three servers on raft storage across the zones, unsealed by the environment's KMS
# key (envs/<env>: the role the server's ServiceAccount assumes may use that key alone),
# and the agent injector that writes each pod's secrets as files. Initialise it once
# (docs/deploying.md), then deploy/terraform/vault configures auth, roles and policies.
resource "helm_release" "vault" {
  name             = "vault"
  namespace        = "vault"
  create_namespace = true
  repository       = "https://helm.releases.hashicorp.com"
  chart            = "vault"
  version          = var.chart_versions["vault"]
  # The pods are not ready until Vault is initialised, which is a person's step.
  atomic = false
  wait   = false
  values = [yamlencode({
    injector = { enabled = true, replicas = 2 }
    ui       = { enabled = true }
    server = {
      serviceAccount = {
        name        = "vault"
        annotations = { "eks.amazonaws.com/role-arn" = data.aws_iam_role.vault.arn }
      }
      dataStorage  = { enabled = true, size = "10Gi" }
      auditStorage = { enabled = true, size = "10Gi" }
      ha = {
        enabled  = true
        replicas = 3
        raft = {
          enabled   = true
          setNodeId = true
          config    = <<-HCL
            ui = true
            listener "tcp" {
              address         = "[::]:8200"
              cluster_address = "[::]:8201"
              tls_disable     = 1
            }
            storage "raft" {
              path = "/vault/data"
              retry_join {
                leader_api_addr = "http://vault-0.vault-internal:8200"
              }
              retry_join {
                leader_api_addr = "http://vault-1.vault-internal:8200"
              }
              retry_join {
                leader_api_addr = "http://vault-2.vault-internal:8200"
              }
            }
            seal "awskms" {
              region     = "eu-west-1"
              kms_key_id = "${data.aws_kms_key.vault.id}"
            }
            service_registration "kubernetes" {}
          HCL
        }
      }
    }
  })]
}

# ---------------------------------------------------------------- the services' databases

locals {
  generation = var.database_password_generation
  # Generation g's password goes to user _a when g is odd, _b when it is even; each user's
  # password version is the last generation it had (0: the password it was created with,
  # which nothing ever reads).
  active_slot  = local.generation % 2 == 1 ? "a" : "b"
  slot_version = { a = local.generation % 2 == 1 ? local.generation : local.generation - 1, b = local.generation % 2 == 0 ? local.generation : local.generation - 1 }
  logins = {
    for pair in setproduct(local.services, ["a", "b"]) : "${pair[0]}_${pair[1]}" => { service = pair[0], slot = pair[1] }
  }
}

check "generation_is_positive" {
  assert {
    condition     = var.database_password_generation >= 1
    error_message = "database_password_generation starts at 1"
  }
}

ephemeral "random_password" "database" {
  for_each = local.logins
  length   = 40
  special  = false
}

# Owns the service's database and its objects; nobody logs in as it.
resource "postgresql_role" "service" {
  for_each = toset(local.services)
  name     = "spruce_${each.key}"
  login    = false
}

resource "postgresql_role" "login" {
  for_each = local.logins
  name     = "spruce_${each.key}"
  login    = true
  roles    = [postgresql_role.service[each.value.service].name]
  # SET ROLE at login: what its migrations create belongs to the owner, whichever user ran them.
  assume_role         = postgresql_role.service[each.value.service].name
  password_wo         = ephemeral.random_password.database[each.key].result
  password_wo_version = local.slot_version[each.value.slot]
}

resource "postgresql_database" "service" {
  for_each = toset(local.services)
  name     = "spruce_${each.key}"
  owner    = postgresql_role.service[each.key].name
}

# CD's deploy role is admin of the namespace spruce alone (envs/<env>: its access entry).
# Kubernetes' admin role covers the built-in kinds; this adds the Prometheus operator's,
# which the chart's ServiceMonitors and PrometheusRule are, and KEDA's ScaledObjects.
resource "kubernetes_cluster_role_v1" "monitoring_admin" {
  metadata {
    name   = "spruce-monitoring-admin"
    labels = { "rbac.authorization.k8s.io/aggregate-to-admin" = "true" }
  }
  rule {
    api_groups = ["monitoring.coreos.com"]
    resources  = ["servicemonitors", "prometheusrules"]
    verbs      = ["get", "list", "watch", "create", "update", "patch", "delete"]
  }
  rule {
    api_groups = ["keda.sh"]
    resources  = ["scaledobjects"]
    verbs      = ["get", "list", "watch", "create", "update", "patch", "delete"]
  }
}

resource "kubernetes_namespace" "spruce" {
  metadata {
    name = "spruce"
  }
}

# The login each service uses now: the user of the active slot and the password it was
# just given, written write-only in the same apply as the role.
resource "kubernetes_secret_v1" "database" {
  metadata {
    name      = "spruce-database"
    namespace = kubernetes_namespace.spruce.metadata[0].name
  }
  data_wo = merge(
    { for service in local.services : service => ephemeral.random_password.database["${service}_${local.active_slot}"].result },
    { for service in local.services : "${service}-user" => "spruce_${service}_${local.active_slot}" },
  )
  data_wo_revision = local.generation
  depends_on       = [postgresql_role.login]
}

# The certificate authorities RDS signs with (ssl_mode verify-full in every service).
data "http" "rds_ca" {
  url = "https://truststore.pki.rds.amazonaws.com/eu-west-1/eu-west-1-bundle.pem"
  lifecycle {
    postcondition {
      condition     = self.status_code == 200 && strcontains(self.response_body, "BEGIN CERTIFICATE")
      error_message = "could not fetch the RDS CA bundle"
    }
  }
}

resource "kubernetes_config_map_v1" "database_ca" {
  metadata {
    name      = "spruce-database-ca"
    namespace = kubernetes_namespace.spruce.metadata[0].name
  }
  data = { "ca.pem" = data.http.rds_ca.response_body }
}

# ---------------------------------------------------------------- logs

# The log index (envs/<env>: logs.tf), configured as its logs-admin role: the index
# template and the retention policy of deploy/observability/opensearch, and the roles of
# Fluent Bit and Grafana.
data "aws_opensearch_domain" "logs" {
  domain_name = "${local.name}-logs"
}

data "aws_iam_role" "logs_admin" {
  name = "${local.name}-logs-admin"
}

data "aws_iam_role" "fluent_bit" {
  name = "${local.name}-fluent-bit"
}

provider "opensearch" {
  url                 = "https://${data.aws_opensearch_domain.logs.endpoint}"
  aws_region          = "eu-west-1"
  aws_assume_role_arn = data.aws_iam_role.logs_admin.arn
  sign_aws_requests   = true
  healthcheck         = false
}

resource "opensearch_index_template" "spruce_logs" {
  name = "spruce-logs"
  body = file("${path.module}/../../observability/opensearch/index-template.json")
}

resource "opensearch_ism_policy" "spruce_logs" {
  policy_id = "spruce-logs"
  body      = file("${path.module}/../../observability/opensearch/ism-policy.json")
}

# Who does what in the log index: Fluent Bit writes the daily indices, Grafana's Logs data
# source reads them; neither anything else.
locals {
  logs_roles = {
    writer = {
      description = "Fluent Bit: creates and writes the daily spruce-logs-* indices"
      cluster     = ["cluster_monitor", "indices:data/write/bulk"]
      index       = ["create_index", "write"]
      role_arn    = data.aws_iam_role.fluent_bit.arn
    }
    reader = {
      description = "Grafana: searches the spruce-logs-* indices"
      cluster     = ["cluster_composite_ops_ro"]
      index       = ["read", "indices:admin/mappings/get"]
      role_arn    = data.aws_iam_role.grafana.arn
    }
  }
}

resource "opensearch_role" "logs" {
  for_each            = local.logs_roles
  role_name           = "spruce-logs-${each.key}"
  description         = each.value.description
  cluster_permissions = each.value.cluster
  index_permissions {
    index_patterns  = ["spruce-logs-*"]
    allowed_actions = each.value.index
  }
}

resource "opensearch_roles_mapping" "logs" {
  for_each      = local.logs_roles
  role_name     = opensearch_role.logs[each.key].role_name
  backend_roles = [each.value.role_arn]
}

# ---------------------------------------------------------------- traces

# The services send every trace to otel-collector.monitoring:4317 (the chart's
# telemetry.otlp_endpoint); the collector (deploy/observability/otel-collector-k8s.yaml)
# keeps those with an error, those slower than 500 ms and 5% of the rest, and hands them
# to Tempo, which keeps them a week in the traces bucket and serves them to Grafana.
# Tempo rather than X-Ray: Grafana links it both ways with the log index (trace_id), it
# takes the collector's OTLP as it is, and its storage is the environment's own bucket.
data "aws_caller_identity" "current" {}

data "aws_iam_role" "tempo" {
  name = "${local.name}-tempo"
}

data "aws_iam_role" "grafana" {
  name = "${local.name}-grafana"
}

resource "helm_release" "tempo" {
  name       = "tempo"
  namespace  = helm_release.kube_prometheus_stack.namespace
  repository = "https://grafana.github.io/helm-charts"
  chart      = "tempo"
  version    = var.chart_versions["tempo"]
  atomic     = true
  values = [yamlencode({
    serviceAccount = {
      name        = "tempo"
      annotations = { "eks.amazonaws.com/role-arn" = data.aws_iam_role.tempo.arn }
    }
    tempo = {
      retention = "168h"
      storage = {
        trace = {
          backend = "s3"
          s3 = {
            bucket   = "${local.name}-traces-${data.aws_caller_identity.current.account_id}"
            endpoint = "s3.eu-west-1.amazonaws.com"
            region   = "eu-west-1"
          }
        }
      }
      receivers = { otlp = { protocols = { grpc = { endpoint = "0.0.0.0:4317" } } } }
    }
  })]
}

resource "helm_release" "otel_collector" {
  name       = "otel-collector"
  namespace  = helm_release.kube_prometheus_stack.namespace
  repository = "https://open-telemetry.github.io/opentelemetry-helm-charts"
  chart      = "opentelemetry-collector"
  version    = var.chart_versions["opentelemetry-collector"]
  atomic     = true
  values = [yamlencode({
    # The Service otel-collector.monitoring, where every environment's values point.
    fullnameOverride = "otel-collector"
    mode             = "deployment"
    # Tail sampling decides on whole traces: every span of one must reach the same replica.
    replicaCount = 1
    image        = { repository = "otel/opentelemetry-collector-contrib" }
    config       = yamldecode(file("${path.module}/../../observability/otel-collector-k8s.yaml"))
    resources    = { requests = { cpu = "500m", memory = "1Gi" }, limits = { memory = "2Gi" } }
  })]
  depends_on = [helm_release.tempo]
}

# Fluent Bit on every node: each container log of the namespace spruce, its JSON lines
# lifted into fields (level, service, target, trace_id, span_id, fields.*) beside the pod's
# metadata, into the index of the day (spruce-logs-YYYY.MM.DD), signed with its IAM role.
resource "helm_release" "fluent_bit" {
  name             = "fluent-bit"
  namespace        = "logging"
  create_namespace = true
  repository       = "https://fluent.github.io/helm-charts"
  chart            = "fluent-bit"
  version          = var.chart_versions["fluent-bit"]
  atomic           = true
  values = [yamlencode({
    serviceAccount = {
      create      = true
      name        = "fluent-bit"
      annotations = { "eks.amazonaws.com/role-arn" = data.aws_iam_role.fluent_bit.arn }
    }
    config = {
      inputs  = <<-EOT
        [INPUT]
            Name              tail
            Tag               kube.*
            Path              /var/log/containers/*_spruce_*.log
            multiline.parser  cri
            Mem_Buf_Limit     50MB
            Skip_Long_Lines   On
      EOT
      filters = <<-EOT
        [FILTER]
            Name         kubernetes
            Match        kube.*
            Merge_Log    On
            Keep_Log     Off
            Labels       Off
            Annotations  Off
      EOT
      outputs = <<-EOT
        [OUTPUT]
            Name                opensearch
            Match               kube.*
            Host                ${data.aws_opensearch_domain.logs.endpoint}
            Port                443
            tls                 On
            AWS_Auth            On
            AWS_Region          eu-west-1
            Logstash_Format     On
            Logstash_Prefix     spruce-logs
            Logstash_DateFormat %Y.%m.%d
            Suppress_Type_Name  On
            Trace_Error         On
            Retry_Limit         10
      EOT
    }
  })]
  depends_on = [opensearch_index_template.spruce_logs, opensearch_ism_policy.spruce_logs, opensearch_roles_mapping.logs]
}

# ---------------------------------------------------------------- the team's tools

# Grafana, OpenSearch Dashboards, Vault's UI and the flags UI are served by a second ingress
# controller behind an internal NLB (reached over the VPN: envs/<env>, internal.tf), each
# behind oauth2-proxy (charts/internal-tools, which refuses the public controller's class).
locals {
  # The envs stack's private zone (internal.tf).
  internal_domain = "internal.${local.environment}.${var.dns_zone_name}"
  internal_class  = "nginx-internal"
}

data "aws_route53_zone" "internal" {
  name         = local.internal_domain
  private_zone = true
}

resource "helm_release" "ingress_nginx_internal" {
  name             = "ingress-nginx-internal"
  namespace        = "ingress-nginx-internal"
  create_namespace = true
  repository       = "https://kubernetes.github.io/ingress-nginx"
  chart            = "ingress-nginx"
  version          = var.chart_versions["ingress-nginx"]
  atomic           = true
  values = [yamlencode({
    controller = {
      replicaCount = 2
      electionID   = "ingress-nginx-internal-leader"
      ingressClass = local.internal_class
      ingressClassResource = {
        name            = local.internal_class
        controllerValue = "k8s.io/ingress-nginx-internal"
      }
      service = {
        annotations = {
          "service.beta.kubernetes.io/aws-load-balancer-type"     = "nlb"
          "service.beta.kubernetes.io/aws-load-balancer-internal" = "true"
        }
      }
    }
  })]
}

# <tool>.internal.<env>.<zone> to the internal NLB, in the private zone.
data "kubernetes_service_v1" "ingress_nginx_internal" {
  metadata {
    name      = "ingress-nginx-internal-controller"
    namespace = helm_release.ingress_nginx_internal.namespace
  }
}

resource "aws_route53_record" "internal_tools" {
  zone_id = data.aws_route53_zone.internal.zone_id
  name    = "*.${data.aws_route53_zone.internal.name}"
  type    = "CNAME"
  ttl     = 300
  records = [data.kubernetes_service_v1.ingress_nginx_internal.status[0].load_balancer[0].ingress[0].hostname]
}

data "aws_secretsmanager_secret" "sso" {
  name = "${local.name}/sso"
}

ephemeral "aws_secretsmanager_secret_version" "sso" {
  secret_id = data.aws_secretsmanager_secret.sso.arn
}

# What signs the flags UI's sessions (the Spruce chart's flagd.ui.secretKeyBase).
ephemeral "random_password" "flagd_ui" {
  length  = 64
  special = false
}

resource "kubernetes_secret_v1" "flagd_ui" {
  metadata {
    name      = "spruce-flagd-ui"
    namespace = kubernetes_namespace.spruce.metadata[0].name
  }
  data_wo = {
    secret-key-base = ephemeral.random_password.flagd_ui.result
  }
  data_wo_revision = 1
}

ephemeral "random_password" "oauth2_proxy_cookie" {
  length  = 32
  special = false
}

resource "kubernetes_namespace" "internal_tools" {
  metadata {
    name = "internal-tools"
  }
}

resource "kubernetes_secret_v1" "oauth2_proxy" {
  metadata {
    name      = "oauth2-proxy"
    namespace = kubernetes_namespace.internal_tools.metadata[0].name
  }
  data_wo = {
    client-id     = jsondecode(ephemeral.aws_secretsmanager_secret_version.sso.secret_string)["client-id"]
    client-secret = jsondecode(ephemeral.aws_secretsmanager_secret_version.sso.secret_string)["client-secret"]
    cookie-secret = ephemeral.random_password.oauth2_proxy_cookie.result
  }
  data_wo_revision = var.sso_generation
}

resource "helm_release" "oauth2_proxy" {
  name       = "oauth2-proxy"
  namespace  = kubernetes_namespace.internal_tools.metadata[0].name
  repository = "https://oauth2-proxy.github.io/manifests"
  chart      = "oauth2-proxy"
  version    = var.chart_versions["oauth2-proxy"]
  atomic     = true
  values = [yamlencode({
    config = { existingSecret = kubernetes_secret_v1.oauth2_proxy.metadata[0].name }
    extraArgs = {
      provider             = "oidc"
      oidc-issuer-url      = var.sso.issuer_url
      allowed-group        = var.sso.allowed_group
      scope                = "openid email profile groups"
      email-domain         = "*"
      upstream             = "static://202"
      reverse-proxy        = true
      set-xauthrequest     = true
      skip-provider-button = true
      cookie-domain        = ".${local.internal_domain}"
      whitelist-domain     = ".${local.internal_domain}"
      cookie-secure        = true
      cookie-expire        = "12h"
      cookie-samesite      = "lax"
    }
  })]
}

resource "helm_release" "internal_tools" {
  name      = "internal-tools"
  namespace = kubernetes_namespace.internal_tools.metadata[0].name
  chart     = "${path.module}/charts/internal-tools"
  atomic    = true
  values = [yamlencode({
    ingressClass = local.internal_class
    domain       = local.internal_domain
    oauth2Proxy  = { service = "oauth2-proxy", port = 80 }
    tools = {
      logs = { externalName = data.aws_opensearch_domain.logs.endpoint }
      # The Spruce chart's flagd UI (flagd.ui, switched on by scripts/terraform_values.py).
      flags = { enabled = true, namespace = kubernetes_namespace.spruce.metadata[0].name, service = "spruce-flagd-ui", port = 80 }
    }
  })]
  depends_on = [helm_release.ingress_nginx_internal, helm_release.oauth2_proxy]
}
