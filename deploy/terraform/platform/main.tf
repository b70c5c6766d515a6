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
#   ServiceMonitors and PrometheusRule carry its label), the cluster autoscaler (nodes
#   follow the pods the HPAs add) and Vault (HA on raft, unsealed by KMS, the agent
#   injector; deploy/terraform/vault configures it). metrics-server is an EKS add-on of the
#   envs/<env> stack.
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
    postgresql = { source = "cyrilgdn/postgresql", version = "~> 1.26" }
    random     = { source = "hashicorp/random", version = "~> 3.7" }
  }
}

locals {
  environment = terraform.workspace
  name        = "spruce-${local.environment}"
  services    = ["core", "search", "scheduler"]
}

variable "acme_email" {
  description = "Let's Encrypt's contact for the certificates (expiry warnings)"
  type        = string
}

variable "database_password_generation" {
  description = "Raise by one to rotate the services' database passwords (in <env>.tfvars)"
  type        = number
}

variable "chart_versions" {
  description = "The add-ons' Helm chart versions"
  type        = map(string)
  default = {
    ingress-nginx         = "4.12.1"
    cert-manager          = "v1.17.2"
    kube-prometheus-stack = "70.4.2"
    cluster-autoscaler    = "9.46.6"
    vault                 = "0.30.0"
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

resource "helm_release" "kube_prometheus_stack" {
  name             = "kube-prometheus-stack"
  namespace        = "monitoring"
  create_namespace = true
  repository       = "https://prometheus-community.github.io/helm-charts"
  chart            = "kube-prometheus-stack"
  version          = var.chart_versions["kube-prometheus-stack"]
  atomic           = true
  timeout          = 900
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
# which the chart's ServiceMonitors and PrometheusRule are.
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
