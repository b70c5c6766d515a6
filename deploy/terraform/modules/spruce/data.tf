# ---------------------------------------------------------------- PostgreSQL

resource "aws_db_subnet_group" "main" {
  name       = local.name
  subnet_ids = aws_subnet.private[*].id
  tags       = local.tags
}

resource "aws_db_parameter_group" "main" {
  name   = local.name
  family = "postgres16"
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
  parameter {
    name  = "log_min_duration_statement"
    value = "250"
  }
  tags = local.tags
}

resource "aws_iam_role" "rds_monitoring" {
  name = "${local.name}-rds-monitoring"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "monitoring.rds.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
  tags = local.tags
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

# engine_version is the major only: minor versions upgrade themselves
# (auto_minor_version_upgrade), and a pinned minor would then differ from the running one.
resource "aws_db_instance" "main" {
  #checkov:skip=CKV_AWS_157:multi-AZ is set per environment (var.db_multi_az): on in prod, off in e2e and staging for cost
  identifier                          = local.name
  engine                              = "postgres"
  engine_version                      = "16"
  instance_class                      = var.db_instance_class
  allocated_storage                   = 50
  max_allocated_storage               = 500
  storage_encrypted                   = true
  kms_key_id                          = aws_kms_key.main.arn
  username                            = "spruce"
  manage_master_user_password         = true
  master_user_secret_kms_key_id       = aws_kms_key.main.arn
  multi_az                            = var.db_multi_az
  db_subnet_group_name                = aws_db_subnet_group.main.name
  parameter_group_name                = aws_db_parameter_group.main.name
  vpc_security_group_ids              = [aws_security_group.datastores.id]
  publicly_accessible                 = false
  backup_retention_period             = 14
  deletion_protection                 = true
  copy_tags_to_snapshot               = true
  auto_minor_version_upgrade          = true
  iam_database_authentication_enabled = true
  performance_insights_enabled        = true
  performance_insights_kms_key_id     = aws_kms_key.main.arn
  monitoring_interval                 = 30
  monitoring_role_arn                 = aws_iam_role.rds_monitoring.arn
  enabled_cloudwatch_logs_exports     = ["postgresql", "upgrade"]
  skip_final_snapshot                 = false
  final_snapshot_identifier           = "${local.name}-final"
  tags                                = local.tags
}

# ---------------------------------------------------------------- Redis

resource "aws_elasticache_subnet_group" "main" {
  name       = local.name
  subnet_ids = aws_subnet.private[*].id
}

resource "random_password" "redis" {
  length  = 48
  special = false
}

resource "aws_elasticache_replication_group" "main" {
  replication_group_id       = local.name
  description                = "Spruce login throttling and caches"
  engine                     = "redis"
  engine_version             = "7.1"
  node_type                  = var.redis_node_type
  num_cache_clusters         = 2
  automatic_failover_enabled = true
  multi_az_enabled           = true
  subnet_group_name          = aws_elasticache_subnet_group.main.name
  security_group_ids         = [aws_security_group.datastores.id]
  at_rest_encryption_enabled = true
  kms_key_id                 = aws_kms_key.main.arn
  transit_encryption_enabled = true
  auth_token                 = random_password.redis.result
  snapshot_retention_limit   = 1
  auto_minor_version_upgrade = true
  tags                       = local.tags
}

# ---------------------------------------------------------------- RabbitMQ

resource "random_password" "mq" {
  length  = 32
  special = false
}

resource "aws_mq_broker" "main" {
  #checkov:skip=CKV_AWS_209:Amazon MQ for RabbitMQ supports only AWS-owned keys for encryption at rest
  broker_name                = local.name
  engine_type                = "RabbitMQ"
  engine_version             = "3.13"
  host_instance_type         = var.mq_instance_type
  deployment_mode            = var.db_multi_az ? "CLUSTER_MULTI_AZ" : "SINGLE_INSTANCE"
  subnet_ids                 = var.db_multi_az ? aws_subnet.private[*].id : [aws_subnet.private[0].id]
  security_groups            = [aws_security_group.datastores.id]
  publicly_accessible        = false
  auto_minor_version_upgrade = true
  # RabbitMQ brokers encrypt at rest with an AWS-owned key only (customer keys are for ActiveMQ).
  encryption_options {
    use_aws_owned_key = true
  }
  logs {
    general = true
  }
  user {
    username = "spruce"
    password = random_password.mq.result
  }
  tags = local.tags
}

# Connection strings for the chart's secrets (copied to Vault or a Kubernetes Secret).
resource "aws_secretsmanager_secret" "connections" {
  #checkov:skip=CKV2_AWS_57:holds the MQ and Redis passwords Terraform generates; they rotate by re-applying with a new random_password, not by a Lambda
  name                    = "${local.name}/connections"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 7
  tags                    = local.tags
}

# Write-only: the version in the state holds no copy of the connection strings.
resource "aws_secretsmanager_secret_version" "connections" {
  secret_id                = aws_secretsmanager_secret.connections.id
  secret_string_wo_version = 1
  secret_string_wo = jsonencode({
    "amqp-url"  = "amqps://spruce:${random_password.mq.result}@${replace(aws_mq_broker.main.instances[0].endpoints[0], "amqps://", "")}"
    "redis-url" = "rediss://:${random_password.redis.result}@${aws_elasticache_replication_group.main.primary_endpoint_address}:6379"
  })
}

# The Slack incoming-webhook URLs Alertmanager posts to, one per channel:
# {"pages": "https://hooks.slack.com/services/…", "tickets": "…"}. A person puts the value
# once (docs/deploying.md); the platform stack copies it, write-only, into the Secret
# `alertmanager-slack` that kube-prometheus-stack mounts.
resource "aws_secretsmanager_secret" "alertmanager_slack" {
  #checkov:skip=CKV2_AWS_57:webhook URLs are made and revoked in Slack; a Lambda cannot rotate them
  name                    = "${local.name}/alertmanager-slack"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 7
  tags                    = local.tags
}

# The internal tools' single sign-on client at the identity provider (OIDC), as oauth2-proxy
# uses it: {"client-id": "…", "client-secret": "…"}. A person puts the value once
# (docs/deploying.md); the platform stack copies it, write-only, into oauth2-proxy's Secret.
resource "aws_secretsmanager_secret" "sso" {
  #checkov:skip=CKV2_AWS_57:the OIDC client's secret is issued and rotated at the identity provider
  name                    = "${local.name}/sso"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 7
  tags                    = local.tags
}
