output "cluster_name" {
  value = aws_eks_cluster.main.name
}

output "database_host" {
  value = aws_db_instance.main.address
}

output "database_master_secret_arn" {
  value = aws_db_instance.main.master_user_secret[0].secret_arn
}

output "connections_secret_arn" {
  value = aws_secretsmanager_secret.connections.arn
}

output "ecr_repositories" {
  value = { for name, repository in data.aws_ecr_repository.service : name => repository.repository_url }
}

output "chart_bucket" {
  value = aws_s3_bucket.charts.id
}

output "uploads_bucket" {
  description = "helm: storage.bucket"
  value       = aws_s3_bucket.uploads.id
}

output "services_role_arn" {
  description = "helm: serviceAccount.annotations.eks.amazonaws.com/role-arn"
  value       = aws_iam_role.spruce.arn
}

output "vpc_cidr" {
  description = "helm: networkPolicy.datastoreCIDRs"
  value       = aws_vpc.main.cidr_block
}

output "api_host" {
  description = "helm: gateway.ingress.host"
  value       = "${var.api_hostname}.${var.dns_zone_name}"
}

output "cluster_autoscaler_role_arn" {
  value = aws_iam_role.cluster_autoscaler.arn
}

output "vault_role_arn" {
  value = aws_iam_role.vault.arn
}

output "logs_endpoint" {
  description = "The log index's HTTPS endpoint, inside the VPC (Fluent Bit ships there)"
  value       = aws_opensearch_domain.logs.endpoint
}

output "internal_domain" {
  description = "The private zone the team's tools are served in (<tool>.<this>)"
  value       = local.internal_domain
}
