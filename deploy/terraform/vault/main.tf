# Vault's configuration for one environment, applied after the platform stack installed
# Vault and a person initialised it (docs/deploying.md), from that environment's runner
# with Vault's API forwarded to it:
#
#   kubectl -n vault port-forward svc/vault-active 8200 &
#   export VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=<the initial root token>
#   terraform init -backend-config=bucket=spruce-terraform-state-<account id>
#   terraform workspace select -or-create staging && terraform apply
#
# It makes the KV store the chart reads (secret/<environment>/<name>, field `value`), the
# Kubernetes auth method, and per component a policy that reads exactly the names that
# component reads and a role bound to its ServiceAccount alone (spruce-<component> in the
# namespace spruce): the gateway cannot read core's signing key. It writes the MQ and
# Redis connection strings from the environment's Secrets Manager secret, write-only (not
# in the state); the other names are a person's step (docs/deploying.md).
terraform {
  required_version = ">= 1.11"
  # terraform init -backend-config=bucket=spruce-terraform-state-<account id>
  backend "s3" {
    key          = "vault/terraform.tfstate" # per workspace: env:/<workspace>/vault/…
    region       = "eu-west-1"
    encrypt      = true
    use_lockfile = true
  }
  required_providers {
    aws   = { source = "hashicorp/aws", version = "~> 5.100" }
    vault = { source = "hashicorp/vault", version = "~> 5.0" }
  }
}

locals {
  environment = terraform.workspace
  # The secret names each component reads: the chart's spruce.secretNames as the
  # environments' values render it (tests/deploy checks that the two agree).
  secrets = {
    gateway   = ["redis-url", "auth-public-key", "gateway-private-key"]
    core      = ["amqp-url", "auth-private-key", "gateway-public-key", "search-public-key", "scheduler-public-key", "stripe-secret-key"]
    search    = ["amqp-url", "auth-public-key", "search-private-key", "scheduler-public-key", "redis-url"]
    scheduler = ["amqp-url", "auth-public-key", "scheduler-private-key", "analytics-hash-key", "smtp-password", "push-token"]
  }
}

variable "connections_version" {
  description = "Raise by one to copy the MQ and Redis connection strings into Vault again (after they change)"
  type        = number
  default     = 1
}

provider "aws" {
  region = "eu-west-1"
  default_tags {
    tags = { project = "spruce", environment = local.environment }
  }
}

# VAULT_ADDR and VAULT_TOKEN from the environment.
provider "vault" {}

check "workspace_is_an_environment" {
  assert {
    condition     = contains(["e2e", "staging", "prod"], terraform.workspace)
    error_message = "select the environment's workspace first: terraform workspace select -or-create e2e|staging|prod"
  }
}

resource "vault_mount" "kv" {
  path        = "secret"
  type        = "kv"
  options     = { version = "2" }
  description = "Spruce's secrets, secret/<environment>/<name>"
}

# Pods log in with their ServiceAccount's token; Vault, in the same cluster, checks it
# through the TokenReview API with its own ServiceAccount.
resource "vault_auth_backend" "kubernetes" {
  type = "kubernetes"
}

resource "vault_kubernetes_auth_backend_config" "cluster" {
  backend         = vault_auth_backend.kubernetes.path
  kubernetes_host = "https://kubernetes.default.svc"
}

resource "vault_policy" "component" {
  for_each = local.secrets
  name     = "spruce-${each.key}"
  policy = join("\n", [
    for name in each.value : "path \"${vault_mount.kv.path}/data/${local.environment}/${name}\" {\n  capabilities = [\"read\"]\n}"
  ])
}

resource "vault_kubernetes_auth_backend_role" "component" {
  for_each                         = local.secrets
  backend                          = vault_auth_backend.kubernetes.path
  role_name                        = "spruce-${each.key}"
  bound_service_account_names      = ["spruce-${each.key}"]
  bound_service_account_namespaces = ["spruce"]
  token_policies                   = [vault_policy.component[each.key].name]
  token_ttl                        = 3600
  token_max_ttl                    = 86400
}

# What Terraform made for this environment (envs/<env>: Amazon MQ's and ElastiCache's
# passwords), read without landing in this state.
ephemeral "aws_secretsmanager_secret_version" "connections" {
  secret_id = "spruce-${local.environment}/connections"
}

resource "vault_kv_secret_v2" "amqp_url" {
  mount                = vault_mount.kv.path
  name                 = "${local.environment}/amqp-url"
  data_json_wo         = jsonencode({ value = jsondecode(ephemeral.aws_secretsmanager_secret_version.connections.secret_string)["amqp-url"] })
  data_json_wo_version = var.connections_version
}

resource "vault_kv_secret_v2" "redis_url" {
  mount                = vault_mount.kv.path
  name                 = "${local.environment}/redis-url"
  data_json_wo         = jsonencode({ value = jsondecode(ephemeral.aws_secretsmanager_secret_version.connections.secret_string)["redis-url"] })
  data_json_wo_version = var.connections_version
}
