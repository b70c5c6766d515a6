# Applied once per AWS account, with local state, before any environment: the bucket that
# holds every environment's Terraform state (locking with S3 lock files, Terraform >= 1.10),
# named with the account id (bucket names are global), and the roles GitHub's workflows
# assume: one that publishes images and charts from main, and one per environment that
# deploys there and nowhere else.
terraform {
  required_version = ">= 1.10"
  required_providers {
    aws = { source = "hashicorp/aws", version = "~> 5.100" }
  }
}

provider "aws" {
  region = "eu-west-1"
}

resource "aws_kms_key" "state" {
  description         = "Terraform state of spruce"
  enable_key_rotation = true
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

data "aws_caller_identity" "current" {}

resource "aws_s3_bucket" "state" {
  #checkov:skip=CKV2_AWS_62:nothing consumes bucket events; reads and writes are audited through access logs and CloudTrail
  #checkov:skip=CKV_AWS_144:versioned and encrypted in one region; a second region is not in the plan yet (recovery uses versions and backups)
  #checkov:skip=CKV_AWS_18:created before any log bucket exists (bootstrap); state access is audited by CloudTrail
  bucket = "spruce-terraform-state-${data.aws_caller_identity.current.account_id}"
}

resource "aws_s3_bucket_public_access_block" "state" {
  bucket                  = aws_s3_bucket.state.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "state" {
  bucket = aws_s3_bucket.state.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "state" {
  bucket = aws_s3_bucket.state.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.state.arn
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "state" {
  bucket = aws_s3_bucket.state.id
  rule {
    id     = "old-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = 365
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

# ---------------------------------------------------------------- the roles CD assumes

variable "github_repository" {
  description = "The repository whose workflows may deploy, owner/name"
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository is owner/name"
  }
}

variable "environments" {
  description = "The environments, each with a GitHub environment of the same name"
  type        = list(string)
  default     = ["e2e", "staging", "prod"]
}

# GitHub's workflows log in with their OIDC token; no AWS keys are stored anywhere.
resource "aws_iam_openid_connect_provider" "github" {
  url            = "https://token.actions.githubusercontent.com"
  client_id_list = ["sts.amazonaws.com"]
  # IAM trusts GitHub's issuer through its own CA list; the argument is still required.
  thumbprint_list = ["6938fd4d98bab03faadb97b34396831e3780aea1", "1c58a3a8518e8759bf075b76b750d4f2df264fcd"]
}

locals {
  account = data.aws_caller_identity.current.account_id
  region  = "eu-west-1"
  # The subject GitHub's token carries: a job of a GitHub environment says so (and only a
  # job the environment's protection rules let run gets it); any other job names its ref.
  publish_subject = "repo:${var.github_repository}:ref:refs/heads/main"
  deploy_subjects = { for environment in var.environments : environment => "repo:${var.github_repository}:environment:${environment}" }
}

data "aws_iam_policy_document" "trust" {
  for_each = merge({ publish = local.publish_subject }, local.deploy_subjects)
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.github.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["sts.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:sub"
      values   = [each.value]
    }
  }
}

# cd.yml's images and chart jobs, on main only: push to the registry and the chart
# repositories. No cluster, no state.
resource "aws_iam_role" "publish" {
  name               = "spruce-cd-publish"
  assume_role_policy = data.aws_iam_policy_document.trust["publish"].json
}

resource "aws_iam_role_policy" "publish" {
  name = "publish"
  role = aws_iam_role.publish.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      { Sid = "RegistryLogin", Effect = "Allow", Action = "ecr:GetAuthorizationToken", Resource = "*" },
      {
        Sid    = "PushImages"
        Effect = "Allow"
        Action = [
          "ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
          "ecr:CompleteLayerUpload", "ecr:PutImage", "ecr:BatchGetImage", "ecr:DescribeImages",
        ]
        Resource = "arn:aws:ecr:${local.region}:${local.account}:repository/spruce-*"
      },
      {
        Sid      = "Charts"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject", "s3:ListBucket"]
        Resource = ["arn:aws:s3:::spruce-*-charts-${local.account}", "arn:aws:s3:::spruce-*-charts-${local.account}/*"]
      },
      {
        Sid      = "EncryptedObjects"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource = "arn:aws:kms:${local.region}:${local.account}:key/*"
        Condition = {
          StringEquals = { "kms:ViaService" = ["s3.${local.region}.amazonaws.com", "ecr.${local.region}.amazonaws.com"] }
        }
      },
    ]
  })
}

# deploy.yml, one role per environment: read that environment's Terraform outputs (its
# state object alone) and find its cluster. Its Kubernetes rights come from the access
# entry the environment's stack gives it, scoped to the namespace spruce.
resource "aws_iam_role" "deploy" {
  for_each           = local.deploy_subjects
  name               = "spruce-cd-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.trust[each.key].json
}

resource "aws_iam_role_policy" "deploy" {
  for_each = local.deploy_subjects
  name     = "deploy"
  role     = aws_iam_role.deploy[each.key].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "ReadOwnState"
        Effect   = "Allow"
        Action   = "s3:GetObject"
        Resource = "${aws_s3_bucket.state.arn}/${each.key}/terraform.tfstate"
      },
      {
        Sid       = "ListOwnState"
        Effect    = "Allow"
        Action    = "s3:ListBucket"
        Resource  = aws_s3_bucket.state.arn
        Condition = { StringLike = { "s3:prefix" = ["${each.key}/*"] } }
      },
      {
        Sid      = "DecryptState"
        Effect   = "Allow"
        Action   = "kms:Decrypt"
        Resource = aws_kms_key.state.arn
        Condition = {
          StringEquals = { "kms:ViaService" = "s3.${local.region}.amazonaws.com" }
        }
      },
      {
        Sid      = "FindCluster"
        Effect   = "Allow"
        Action   = "eks:DescribeCluster"
        Resource = "arn:aws:eks:${local.region}:${local.account}:cluster/spruce-${each.key}"
      },
    ]
  })
}

output "state_bucket" {
  description = "Every other stack's backend: terraform init -backend-config=bucket=<this>"
  value       = aws_s3_bucket.state.id
}

output "publish_role_arn" {
  description = "GitHub variable AWS_PUBLISH_ROLE_ARN (cd.yml's images and chart jobs)"
  value       = aws_iam_role.publish.arn
}

output "deploy_role_arns" {
  description = "Per environment: the GitHub environment's variable AWS_DEPLOY_ROLE_ARN, and deployer_role_arn in envs/<env>/terraform.tfvars"
  value       = { for environment, role in aws_iam_role.deploy : environment => role.arn }
}
