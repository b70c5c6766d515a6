# Spruce's prod environment. Bootstrap order: docs/deploying.md.
terraform {
  required_version = ">= 1.10"
  # The bucket is named with the account id (bootstrap's output state_bucket):
  #   terraform init -backend-config=bucket=spruce-terraform-state-<account id>
  backend "s3" {
    key          = "prod/terraform.tfstate"
    region       = "eu-west-1"
    encrypt      = true
    use_lockfile = true
  }
  required_providers {
    aws = { source = "hashicorp/aws", version = "~> 5.100" }
  }
}

provider "aws" {
  region = "eu-west-1"
  default_tags {
    tags = { project = "spruce", environment = "prod" }
  }
}

# Every variable is set in terraform.tfvars beside this file, committed: an apply with
# one new value never resets the others.
variable "deployer_role_arn" {
  description = "The role deploy.yml assumes for this environment (bootstrap's deploy_role_arns)"
  type        = string
  validation {
    condition     = can(regex("^arn:aws:iam::[0-9]{12}:role/spruce-cd-", var.deployer_role_arn))
    error_message = "deployer_role_arn is bootstrap's deploy_role_arns entry for this environment"
  }
}

variable "deploy_runner_security_group_ids" {
  description = "Security groups of this environment's self-hosted CD runners (inside the VPC)"
  type        = list(string)
}

variable "ingress_load_balancer_dns" {
  description = "The ingress controller's load balancer, once the platform stack made it (empty before)"
  type        = string
}

variable "client_vpn" {
  description = "AWS Client VPN for the team (the modules' internal.tf); enabled = false where another VPN reaches the VPC"
  type = object({
    enabled                = bool
    server_certificate_arn = string
    saml_provider_arn      = string
    group_id               = string
    client_cidr            = string
  })
}

variable "dns_zone_name" {
  description = "An existing public Route 53 zone, e.g. spruce.example"
  type        = string
}

module "spruce" {
  source                           = "../../modules/spruce"
  environment                      = "prod"
  node_count                       = { min = 3, desired = 6, max = 20 }
  search_node_count                = { min = 3, desired = 3, max = 12 }
  db_instance_class                = "db.r6g.xlarge"
  db_multi_az                      = true
  redis_node_type                  = "cache.r6g.large"
  mq_instance_type                 = "mq.m5.large"
  logs_instance_type               = "r6g.large.search"
  logs_volume_gb                   = 200
  logs_dedicated_masters           = true
  client_vpn                       = var.client_vpn
  dns_zone_name                    = var.dns_zone_name
  api_hostname                     = "api"
  ingress_load_balancer_dns        = var.ingress_load_balancer_dns
  deployer_role_arn                = var.deployer_role_arn
  deploy_runner_security_group_ids = var.deploy_runner_security_group_ids
}

output "spruce" {
  value = module.spruce
}
