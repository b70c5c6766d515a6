# Everything the steps of docs/deploying.md set for prod, committed so that every apply
# uses all of it. Replace the placeholders with your account's values as the steps say.
deployer_role_arn                = "arn:aws:iam::123456789012:role/spruce-cd-prod" # step 1: bootstrap's deploy_role_arns["prod"]
deploy_runner_security_group_ids = []                                              # step 5: the runner's security group
ingress_load_balancer_dns        = ""                                              # step 7: the ingress controller's load balancer
dns_zone_name                    = "spruce.example"                                # your public Route 53 zone
# The team's VPN into the VPC (internal tools): an ACM certificate for the endpoint, the IAM
# SAML provider of the identity provider, the group admitted, and client addresses outside
# the VPC's. enabled = false where the team's own VPN reaches the VPC instead.
client_vpn = {
  enabled                = false
  server_certificate_arn = ""
  saml_provider_arn      = ""
  group_id               = ""
  client_cidr            = "10.100.0.0/22"
}
