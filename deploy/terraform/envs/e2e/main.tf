# Spruce's e2e environment. Bootstrap order: README, "Deploying".
terraform {
  required_version = ">= 1.10"
  backend "s3" {
    bucket       = "spruce-terraform-state"
    key          = "e2e/terraform.tfstate"
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
    tags = { project = "spruce", environment = "e2e" }
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
  environment                      = "e2e"
  node_count                       = { min = 2, desired = 2, max = 4 }
  search_node_count                = { min = 1, desired = 1, max = 2 }
  db_instance_class                = "db.t4g.medium"
  db_multi_az                      = false
  redis_node_type                  = "cache.t4g.small"
  mq_instance_type                 = "mq.t3.micro"
  dns_zone_name                    = "spruce.example"
  api_hostname                     = "api.e2e"
  ingress_load_balancer_dns        = var.ingress_load_balancer_dns
  deployer_role_arn                = var.deployer_role_arn
  deploy_runner_security_group_ids = var.deploy_runner_security_group_ids
}

output "spruce" {
  value = module.spruce
}
