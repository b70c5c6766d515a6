# What runs inside an environment's cluster and database, applied after its envs/<env> stack
# from a machine inside that VPC (the EKS API and RDS are private: a CD runner of that
# environment). One Terraform workspace per environment, named as it is:
#
#   terraform init && terraform workspace select -or-create staging && terraform apply
#
# - the cluster add-ons the chart expects: ingress-nginx, cert-manager with a Let's Encrypt
#   ClusterIssuer (the Ingress's TLS certificate), kube-prometheus-stack (release name
#   kube-prometheus-stack: the ServiceMonitors and PrometheusRule carry its label).
#   metrics-server is an EKS add-on of the envs/<env> stack.
# - the services' own database users (spruce_core, spruce_search, spruce_scheduler), each
#   owning its database, with passwords made here, and the Kubernetes Secret
#   `spruce-database` the chart mounts them from. Terraform logs in to PostgreSQL as the
#   RDS master user with the password Secrets Manager holds now, so RDS rotating it every
#   7 days breaks nothing. To rotate the services' passwords, raise
#   database_password_generation and apply: the roles and the Secret change in one apply,
#   the kubelet refreshes the mounted files within about a minute, and each service reads
#   its file again (database.password_recheck_ms) for new connections; open ones stay
#   logged in.
terraform {
  required_version = ">= 1.10"
  backend "s3" {
    bucket       = "spruce-terraform-state"
    key          = "platform/terraform.tfstate" # per workspace: env:/<workspace>/platform/…
    region       = "eu-west-1"
    encrypt      = true
    use_lockfile = true
  }
  required_providers {
    aws        = { source = "hashicorp/aws", version = "~> 5.80" }
    helm       = { source = "hashicorp/helm", version = "~> 2.17" }
    kubernetes = { source = "hashicorp/kubernetes", version = "~> 2.35" }
    postgresql = { source = "cyrilgdn/postgresql", version = "~> 1.25" }
    random     = { source = "hashicorp/random", version = "~> 3.6" }
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
  description = "Raise by one to rotate the services' database passwords"
  type        = number
  default     = 1
}

variable "chart_versions" {
  description = "The add-ons' Helm chart versions"
  type        = map(string)
  default = {
    ingress-nginx         = "4.12.1"
    cert-manager          = "v1.17.2"
    kube-prometheus-stack = "70.4.2"
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

data "aws_eks_cluster_auth" "main" {
  name = local.name
}

data "aws_db_instance" "main" {
  db_instance_identifier = local.name
}

# RDS manages the master password and rotates it; read what it is now, at every apply.
data "aws_secretsmanager_secret_version" "master" {
  secret_id = data.aws_db_instance.main.master_user_secret[0].secret_arn
}

provider "kubernetes" {
  host                   = data.aws_eks_cluster.main.endpoint
  cluster_ca_certificate = base64decode(data.aws_eks_cluster.main.certificate_authority[0].data)
  token                  = data.aws_eks_cluster_auth.main.token
}

provider "helm" {
  kubernetes {
    host                   = data.aws_eks_cluster.main.endpoint
    cluster_ca_certificate = base64decode(data.aws_eks_cluster.main.certificate_authority[0].data)
    token                  = data.aws_eks_cluster_auth.main.token
  }
}

provider "postgresql" {
  host      = data.aws_db_instance.main.address
  port      = data.aws_db_instance.main.port
  username  = jsondecode(data.aws_secretsmanager_secret_version.master.secret_string)["username"]
  password  = jsondecode(data.aws_secretsmanager_secret_version.master.secret_string)["password"]
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

# ---------------------------------------------------------------- the services' databases

resource "random_password" "database" {
  for_each = toset(local.services)
  length   = 40
  special  = false
  keepers  = { generation = var.database_password_generation }
}

resource "postgresql_role" "service" {
  for_each = toset(local.services)
  name     = "spruce_${each.key}"
  login    = true
  password = random_password.database[each.key].result
}

resource "postgresql_database" "service" {
  for_each = toset(local.services)
  name     = "spruce_${each.key}"
  owner    = postgresql_role.service[each.key].name
}

resource "kubernetes_namespace" "spruce" {
  metadata {
    name = "spruce"
  }
}

resource "kubernetes_secret" "database" {
  metadata {
    name      = "spruce-database"
    namespace = kubernetes_namespace.spruce.metadata[0].name
  }
  data = { for service in local.services : service => random_password.database[service].result }
  # The roles take the new password in the same apply; the Secret follows them.
  depends_on = [postgresql_role.service]
}
