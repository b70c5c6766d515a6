# Applied once per AWS account, after bootstrap and before any environment: the account's
# one image registry. CD pushes each tested commit once (spruce-<service>:<commit>) and
# every environment pulls the same image, so e2e, staging and prod run what was tested and
# their stacks never create repositories of one name twice.
terraform {
  required_version = ">= 1.10"
  # terraform init -backend-config=bucket=spruce-terraform-state-<account id>
  backend "s3" {
    key          = "registry/terraform.tfstate"
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
    tags = { project = "spruce", environment = "shared" }
  }
}

variable "services" {
  type    = list(string)
  default = ["gateway", "core", "search", "scheduler"]
}

data "aws_caller_identity" "current" {}

resource "aws_kms_key" "registry" {
  description             = "spruce: encryption of the service images"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AccountAdministers"
      Effect    = "Allow"
      Principal = { AWS = "arn:aws:iam::${data.aws_caller_identity.current.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })
}

resource "aws_ecr_repository" "service" {
  for_each             = toset(var.services)
  name                 = "spruce-${each.key}"
  image_tag_mutability = "IMMUTABLE"
  image_scanning_configuration {
    scan_on_push = true
  }
  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.registry.arn
  }
}

resource "aws_ecr_lifecycle_policy" "service" {
  for_each   = aws_ecr_repository.service
  repository = each.value.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "keep the last 200 images"
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 200 }
      action       = { type = "expire" }
    }]
  })
}

output "repositories" {
  value = { for name, repository in aws_ecr_repository.service : name => repository.repository_url }
}
