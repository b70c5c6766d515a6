# Applied once per AWS account, with local state, before any environment: the bucket that
# holds every environment's Terraform state (locking with S3 lock files, Terraform >= 1.10).
terraform {
  required_version = ">= 1.10"
  required_providers {
    aws = { source = "hashicorp/aws", version = "~> 5.80" }
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
  bucket = "spruce-terraform-state"
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

# ---------------------------------------------------------------- the role CD assumes

variable "github_repository" {
  description = "The repository whose workflows may deploy, owner/name"
  type        = string
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
}

resource "aws_iam_role" "cd" {
  name = "spruce-cd"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Federated = aws_iam_openid_connect_provider.github.arn }
      Action    = "sts:AssumeRoleWithWebIdentity"
      Condition = {
        StringEquals = { "token.actions.githubusercontent.com:aud" = "sts.amazonaws.com" }
        StringLike   = { "token.actions.githubusercontent.com:sub" = "repo:${var.github_repository}:*" }
      }
    }]
  })
}

# What cd.yml and deploy.yml do: push images, publish the chart, read each environment's
# Terraform outputs, and reach its cluster (Kubernetes rights come from the access entry
# each environment's stack gives this role).
resource "aws_iam_role_policy" "cd" {
  name = "deploy"
  role = aws_iam_role.cd.id
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
        Sid      = "ReadState"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:ListBucket"]
        Resource = [aws_s3_bucket.state.arn, "${aws_s3_bucket.state.arn}/*"]
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
      {
        Sid      = "FindClusters"
        Effect   = "Allow"
        Action   = "eks:DescribeCluster"
        Resource = "arn:aws:eks:${local.region}:${local.account}:cluster/spruce-*"
      },
    ]
  })
}

output "cd_role_arn" {
  description = "GitHub variable AWS_CD_ROLE_ARN, and deployer_role_arn of each environment"
  value       = aws_iam_role.cd.arn
}
