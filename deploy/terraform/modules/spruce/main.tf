# Spruce on AWS for one environment: network, EKS (a node group for search of its own),
# RDS PostgreSQL, ElastiCache Redis, Amazon MQ (RabbitMQ), S3, ECR, IAM roles for service
# accounts, DNS. Secrets are generated here and stored in Secrets Manager; Vault (or an
# operator) copies them into the cluster (docs/deploying.md).

locals {
  name = "spruce-${var.environment}"
  tags = { project = "spruce", environment = var.environment, managed_by = "terraform" }
}

data "aws_caller_identity" "current" {}

# The key policy of every key here: the account administers it through IAM.
locals {
  account_administers_key = jsonencode({
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

resource "aws_kms_key" "main" {
  description             = "${local.name}: encryption of data at rest"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = local.account_administers_key
  tags                    = local.tags
}

# ---------------------------------------------------------------- network

resource "aws_vpc" "main" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = merge(local.tags, { Name = local.name })
}

resource "aws_default_security_group" "main" {
  vpc_id = aws_vpc.main.id
  tags   = local.tags
}

resource "aws_flow_log" "main" {
  vpc_id               = aws_vpc.main.id
  traffic_type         = "ALL"
  log_destination_type = "s3"
  log_destination      = aws_s3_bucket.logs.arn
  tags                 = local.tags
  # The bucket policy lets the delivery service write.
  depends_on = [aws_s3_bucket_policy.logs]
}

resource "aws_subnet" "private" {
  count             = length(var.availability_zones)
  vpc_id            = aws_vpc.main.id
  availability_zone = var.availability_zones[count.index]
  cidr_block        = cidrsubnet(var.vpc_cidr, 4, count.index)
  tags = merge(local.tags, {
    Name                              = "${local.name}-private-${count.index}"
    "kubernetes.io/role/internal-elb" = "1"
  })
}

resource "aws_subnet" "public" {
  count             = length(var.availability_zones)
  vpc_id            = aws_vpc.main.id
  availability_zone = var.availability_zones[count.index]
  cidr_block        = cidrsubnet(var.vpc_cidr, 8, 240 + count.index)
  tags = merge(local.tags, {
    Name                     = "${local.name}-public-${count.index}"
    "kubernetes.io/role/elb" = "1"
  })
}

resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
  tags   = local.tags
}

resource "aws_eip" "nat" {
  count  = length(var.availability_zones)
  domain = "vpc"
  tags   = local.tags
}

resource "aws_nat_gateway" "main" {
  count         = length(var.availability_zones)
  allocation_id = aws_eip.nat[count.index].id
  subnet_id     = aws_subnet.public[count.index].id
  tags          = local.tags
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.main.id
  }
  tags = local.tags
}

resource "aws_route_table_association" "public" {
  count          = length(var.availability_zones)
  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

resource "aws_route_table" "private" {
  count  = length(var.availability_zones)
  vpc_id = aws_vpc.main.id
  route {
    cidr_block     = "0.0.0.0/0"
    nat_gateway_id = aws_nat_gateway.main[count.index].id
  }
  tags = local.tags
}

resource "aws_route_table_association" "private" {
  count          = length(var.availability_zones)
  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[count.index].id
}

# Datastores accept connections from inside the VPC only.
resource "aws_security_group" "datastores" {
  name        = "${local.name}-datastores"
  description = "PostgreSQL, Redis and RabbitMQ, reachable from the VPC"
  vpc_id      = aws_vpc.main.id
  tags        = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "datastores" {
  for_each          = { postgres = 5432, redis = 6379, amqps = 5671 }
  security_group_id = aws_security_group.datastores.id
  description       = "${each.key} from the VPC"
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "tcp"
  from_port         = each.value
  to_port           = each.value
}
