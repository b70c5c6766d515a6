# ---------------------------------------------------------------- logs

# Amazon OpenSearch Service holds the services' JSON logs: Fluent Bit (platform stack)
# ships every container log of the namespace spruce into daily indices
# spruce-logs-YYYY.MM.DD, mapped and kept 14 days by deploy/observability/opensearch.
# Reachable inside the VPC only; fine-grained access control maps IAM roles to OpenSearch
# roles: the logs-admin role (the platform stack acts as it to install the index template,
# the retention policy and the writer role) and Fluent Bit's own role, mapped to a writer
# of spruce-logs-* alone. People read through OpenSearch Dashboards behind the internal
# single sign-on.
resource "aws_security_group" "logs" {
  name        = "${local.name}-logs"
  description = "OpenSearch, reachable over HTTPS from the VPC"
  vpc_id      = aws_vpc.main.id
  tags        = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "logs" {
  security_group_id = aws_security_group.logs.id
  description       = "https from the VPC"
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

# Administers the domain's security and templates; assumed by the account's administrators.
resource "aws_iam_role" "logs_admin" {
  name = "${local.name}-logs-admin"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { AWS = "arn:aws:iam::${data.aws_caller_identity.current.account_id}:root" }
    }]
  })
  tags = local.tags
}

resource "aws_iam_role" "fluent_bit" {
  name               = "${local.name}-fluent-bit"
  assume_role_policy = data.aws_iam_policy_document.irsa["fluent-bit"].json
  tags               = local.tags
}

resource "aws_iam_role_policy" "fluent_bit" {
  name = "ship-logs"
  role = aws_iam_role.fluent_bit.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["es:ESHttpGet", "es:ESHttpPost", "es:ESHttpPut", "es:ESHttpHead"]
      Resource = "${aws_opensearch_domain.logs.arn}/*"
    }]
  })
}

# The domain's own application and audit logs, in CloudWatch Logs under a key CloudWatch
# Logs may use for those groups alone.
resource "aws_kms_key" "opensearch_logs" {
  description             = "${local.name}: the log index's own logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      jsondecode(local.account_administers_key).Statement[0],
      {
        Sid       = "CloudWatchLogs"
        Effect    = "Allow"
        Principal = { Service = "logs.${var.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:aws:logs:${var.region}:${data.aws_caller_identity.current.account_id}:log-group:/aws/opensearch/${local.name}-logs/*"
          }
        }
      },
    ]
  })
  tags = local.tags
}

resource "aws_cloudwatch_log_group" "opensearch" {
  for_each          = toset(["application", "audit"])
  name              = "/aws/opensearch/${local.name}-logs/${each.key}"
  retention_in_days = 365
  kms_key_id        = aws_kms_key.opensearch_logs.arn
  tags              = local.tags
}

resource "aws_cloudwatch_log_resource_policy" "opensearch" {
  policy_name = "${local.name}-opensearch"
  policy_document = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "es.amazonaws.com" }
      Action    = ["logs:PutLogEvents", "logs:CreateLogStream"]
      Resource  = [for group in aws_cloudwatch_log_group.opensearch : "${group.arn}:*"]
    }]
  })
}

resource "aws_opensearch_domain" "logs" {
  #checkov:skip=CKV2_AWS_59:prod runs three dedicated masters (logs_dedicated_masters); e2e and staging keep two weeks of logs on three data nodes, where a master set would double the cost
  #checkov:skip=CKV_AWS_318:as CKV2_AWS_59: three dedicated masters where logs_dedicated_masters is set (prod)
  domain_name    = "${local.name}-logs"
  engine_version = "OpenSearch_2.17"
  cluster_config {
    instance_type            = var.logs_instance_type
    instance_count           = length(var.availability_zones)
    zone_awareness_enabled   = true
    dedicated_master_enabled = var.logs_dedicated_masters
    dedicated_master_type    = var.logs_dedicated_masters ? var.logs_instance_type : null
    dedicated_master_count   = var.logs_dedicated_masters ? 3 : null
    zone_awareness_config {
      availability_zone_count = length(var.availability_zones)
    }
  }
  vpc_options {
    subnet_ids         = aws_subnet.private[*].id
    security_group_ids = [aws_security_group.logs.id]
  }
  ebs_options {
    ebs_enabled = true
    volume_type = "gp3"
    volume_size = var.logs_volume_gb
  }
  encrypt_at_rest {
    enabled    = true
    kms_key_id = aws_kms_key.main.arn
  }
  node_to_node_encryption {
    enabled = true
  }
  domain_endpoint_options {
    enforce_https       = true
    tls_security_policy = "Policy-Min-TLS-1-2-2019-07"
  }
  advanced_security_options {
    enabled                        = true
    anonymous_auth_enabled         = false
    internal_user_database_enabled = false
    master_user_options {
      master_user_arn = aws_iam_role.logs_admin.arn
    }
  }
  log_publishing_options {
    enabled                  = true
    log_type                 = "ES_APPLICATION_LOGS"
    cloudwatch_log_group_arn = aws_cloudwatch_log_group.opensearch["application"].arn
  }
  log_publishing_options {
    enabled                  = true
    log_type                 = "AUDIT_LOGS"
    cloudwatch_log_group_arn = aws_cloudwatch_log_group.opensearch["audit"].arn
  }
  # IAM decides who reaches the domain at all; fine-grained access control what each may do.
  access_policies = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { AWS = [aws_iam_role.logs_admin.arn, aws_iam_role.fluent_bit.arn, aws_iam_role.grafana.arn] }
      Action    = "es:ESHttp*"
      Resource  = "arn:aws:es:${var.region}:${data.aws_caller_identity.current.account_id}:domain/${local.name}-logs/*"
    }]
  })
  tags       = local.tags
  depends_on = [aws_cloudwatch_log_resource_policy.opensearch]
}
