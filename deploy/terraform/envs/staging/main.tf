# Spruce's staging environment. Bootstrap order: README, "Deploying".
terraform {
  required_version = ">= 1.10"
  backend "s3" {
    bucket       = "spruce-terraform-state"
    key          = "staging/terraform.tfstate"
    region       = "eu-west-1"
    encrypt      = true
    use_lockfile = true
  }
  required_providers {
    aws = { source = "hashicorp/aws", version = "~> 5.80" }
  }
}

provider "aws" {
  region = "eu-west-1"
  default_tags {
    tags = { project = "spruce", environment = "staging" }
  }
}

variable "deployer_role_arn" {
  description = "The role CD assumes (created with the GitHub OIDC trust, outside this stack)"
  type        = string
  default     = ""
}

variable "deploy_runner_security_group_ids" {
  description = "Security groups of this environment's self-hosted CD runners (inside the VPC)"
  type        = list(string)
  default     = []
}

variable "ingress_load_balancer_dns" {
  description = "Set after the first Helm install, when the ingress controller's load balancer exists"
  type        = string
  default     = ""
}

module "spruce" {
  source                           = "../../modules/spruce"
  environment                      = "staging"
  node_count                       = { min = 3, desired = 3, max = 6 }
  search_node_count                = { min = 1, desired = 2, max = 4 }
  db_instance_class                = "db.m6g.large"
  db_multi_az                      = false
  redis_node_type                  = "cache.m6g.large"
  mq_instance_type                 = "mq.m5.large"
  dns_zone_name                    = "spruce.example"
  api_hostname                     = "api.staging"
  ingress_load_balancer_dns        = var.ingress_load_balancer_dns
  deployer_role_arn                = var.deployer_role_arn
  deploy_runner_security_group_ids = var.deploy_runner_security_group_ids
}

output "spruce" {
  value = module.spruce
}
