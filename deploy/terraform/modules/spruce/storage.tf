# ---------------------------------------------------------------- S3

# Access logs of the other buckets and the VPC's flow logs.
resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV2_AWS_62:nothing consumes bucket events; reads and writes are audited through access logs and CloudTrail
  #checkov:skip=CKV_AWS_144:versioned and encrypted in one region; a second region is not in the plan yet (recovery uses versions and backups)
  #checkov:skip=CKV_AWS_18:this is the access-log bucket itself; logging it into itself would loop
  #checkov:skip=CKV_AWS_145:S3 server access logging refuses a KMS-encrypted target bucket; SSE-S3 (aws_s3_bucket_server_side_encryption_configuration.logs) is what AWS supports here
  bucket = "${local.name}-logs-${data.aws_caller_identity.current.account_id}"
  tags   = local.tags
}

# The Helm chart repository CD pushes to (helm s3 / plain index.yaml + .tgz).
resource "aws_s3_bucket" "charts" {
  #checkov:skip=CKV2_AWS_62:nothing consumes bucket events; reads and writes are audited through access logs and CloudTrail
  #checkov:skip=CKV_AWS_144:versioned and encrypted in one region; a second region is not in the plan yet (recovery uses versions and backups)
  bucket = "${local.name}-charts-${data.aws_caller_identity.current.account_id}"
  tags   = local.tags
}

# Users' files (cleaners' photos and identity documents) and the analytics archive.
resource "aws_s3_bucket" "uploads" {
  #checkov:skip=CKV2_AWS_62:nothing consumes bucket events; reads and writes are audited through access logs and CloudTrail
  #checkov:skip=CKV_AWS_144:versioned and encrypted in one region; a second region is not in the plan yet (recovery uses versions and backups)
  bucket = "${local.name}-uploads-${data.aws_caller_identity.current.account_id}"
  tags   = local.tags
}

# Tempo's trace blocks (tracing.tf); Tempo deletes them after its retention.
resource "aws_s3_bucket" "traces" {
  #checkov:skip=CKV2_AWS_62:nothing consumes bucket events; reads and writes are audited through access logs and CloudTrail
  #checkov:skip=CKV_AWS_144:traces are kept a week; a copy in a second region would outlive them
  bucket = "${local.name}-traces-${data.aws_caller_identity.current.account_id}"
  tags   = local.tags
}

locals {
  buckets = {
    logs    = aws_s3_bucket.logs.id
    charts  = aws_s3_bucket.charts.id
    uploads = aws_s3_bucket.uploads.id
    traces  = aws_s3_bucket.traces.id
  }
  # Encrypted with the environment's key and access-logged into the log bucket.
  served_buckets = { charts = aws_s3_bucket.charts.id, uploads = aws_s3_bucket.uploads.id, traces = aws_s3_bucket.traces.id }
}

resource "aws_s3_bucket_public_access_block" "all" {
  for_each                = local.buckets
  bucket                  = each.value
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "all" {
  for_each = local.buckets
  bucket   = each.value
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "all" {
  for_each = local.served_buckets
  bucket   = each.value
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.main.arn
    }
    bucket_key_enabled = true
  }
}

# S3 server access logs can be delivered only to a bucket encrypted with S3-managed keys
# (SSE-KMS targets are refused), so the log bucket uses SSE-S3; the flow logs then need no
# grant on the KMS key either.
resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

# Who may write into the log bucket: S3's log delivery (access logs of this account's
# buckets) and CloudWatch Logs' delivery (the VPC's flow logs), nobody over plain HTTP.
resource "aws_s3_bucket_policy" "logs" {
  bucket = aws_s3_bucket.logs.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "S3AccessLogs"
        Effect    = "Allow"
        Principal = { Service = "logging.s3.amazonaws.com" }
        Action    = "s3:PutObject"
        Resource  = "${aws_s3_bucket.logs.arn}/s3/*"
        Condition = {
          StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.current.account_id }
        }
      },
      {
        Sid       = "FlowLogsWrite"
        Effect    = "Allow"
        Principal = { Service = "delivery.logs.amazonaws.com" }
        Action    = "s3:PutObject"
        Resource  = "${aws_s3_bucket.logs.arn}/AWSLogs/${data.aws_caller_identity.current.account_id}/*"
        Condition = {
          StringEquals = {
            "aws:SourceAccount" = data.aws_caller_identity.current.account_id
            "s3:x-amz-acl"      = "bucket-owner-full-control"
          }
        }
      },
      {
        Sid       = "FlowLogsAcl"
        Effect    = "Allow"
        Principal = { Service = "delivery.logs.amazonaws.com" }
        Action    = ["s3:GetBucketAcl", "s3:ListBucket"]
        Resource  = aws_s3_bucket.logs.arn
        Condition = {
          StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.current.account_id }
        }
      },
      {
        Sid       = "TLSOnly"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [aws_s3_bucket.logs.arn, "${aws_s3_bucket.logs.arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
    ]
  })
}

resource "aws_s3_bucket_lifecycle_configuration" "all" {
  for_each = local.buckets
  bucket   = each.value
  rule {
    id     = "old-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = 90
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

resource "aws_s3_bucket_logging" "served" {
  for_each      = local.served_buckets
  bucket        = each.value
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "s3/${each.key}/"
}

# ---------------------------------------------------------------- DNS

data "aws_route53_zone" "main" {
  name = var.dns_zone_name
}

resource "aws_route53_record" "api" {
  count   = var.ingress_load_balancer_dns == "" ? 0 : 1
  zone_id = data.aws_route53_zone.main.zone_id
  name    = "${var.api_hostname}.${var.dns_zone_name}"
  type    = "CNAME"
  ttl     = 300
  records = [var.ingress_load_balancer_dns]
}
