# ---------------------------------------------------------------- the team's tools

# The team's tools (Grafana, OpenSearch Dashboards, Vault's UI, the flags UI) are served
# by an internal ingress controller behind single sign-on (platform stack), at
# <tool>.internal.<environment>.<zone>: a private zone only the VPC, and so the VPN,
# resolves.
locals {
  internal_domain = "internal.${var.environment}.${var.dns_zone_name}"
}

resource "aws_route53_zone" "internal" {
  #checkov:skip=CKV2_AWS_38:DNSSEC signing is for public zones; this one answers inside the VPC only
  #checkov:skip=CKV2_AWS_39:query logging of a private zone of a handful of tool names adds nothing the load balancer's access logs do not
  name = local.internal_domain
  vpc {
    vpc_id = aws_vpc.main.id
  }
  tags = local.tags
}

# AWS Client VPN into the VPC for the team: sign-in through the identity provider (SAML),
# admitted to the VPC's addresses only if in `client_vpn.group_id`; only traffic for the
# VPC goes through it (split tunnel), and it resolves through the VPC's resolver (so the
# internal zone works). Off where a team's own VPN already reaches the VPC.
resource "aws_cloudwatch_log_group" "client_vpn" {
  count             = var.client_vpn.enabled ? 1 : 0
  name              = "/aws/client-vpn/${local.name}"
  retention_in_days = 365
  kms_key_id        = aws_kms_key.opensearch_logs.arn
  tags              = local.tags
}

resource "aws_security_group" "client_vpn" {
  count       = var.client_vpn.enabled ? 1 : 0
  name        = "${local.name}-client-vpn"
  description = "Client VPN connections into the VPC"
  vpc_id      = aws_vpc.main.id
  tags        = local.tags
}

resource "aws_vpc_security_group_egress_rule" "client_vpn" {
  count             = var.client_vpn.enabled ? 1 : 0
  security_group_id = aws_security_group.client_vpn[0].id
  description       = "to the VPC"
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "-1"
}

resource "aws_ec2_client_vpn_endpoint" "team" {
  count                  = var.client_vpn.enabled ? 1 : 0
  description            = "${local.name}: the team's way to the internal tools"
  server_certificate_arn = var.client_vpn.server_certificate_arn
  client_cidr_block      = var.client_vpn.client_cidr
  split_tunnel           = true
  vpc_id                 = aws_vpc.main.id
  security_group_ids     = [aws_security_group.client_vpn[0].id]
  dns_servers            = [cidrhost(var.vpc_cidr, 2)]
  session_timeout_hours  = 12
  authentication_options {
    type              = "federated-authentication"
    saml_provider_arn = var.client_vpn.saml_provider_arn
  }
  connection_log_options {
    enabled              = true
    cloudwatch_log_group = aws_cloudwatch_log_group.client_vpn[0].name
  }
  tags = local.tags
}

resource "aws_ec2_client_vpn_network_association" "team" {
  count                  = var.client_vpn.enabled ? length(aws_subnet.private) : 0
  client_vpn_endpoint_id = aws_ec2_client_vpn_endpoint.team[0].id
  subnet_id              = aws_subnet.private[count.index].id
}

resource "aws_ec2_client_vpn_authorization_rule" "team" {
  count                  = var.client_vpn.enabled ? 1 : 0
  client_vpn_endpoint_id = aws_ec2_client_vpn_endpoint.team[0].id
  target_network_cidr    = var.vpc_cidr
  access_group_id        = var.client_vpn.group_id
  description            = "the team's group of the identity provider"
}
