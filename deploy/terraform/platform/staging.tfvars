# The platform stack's settings for staging: terraform apply -var-file=staging.tfvars in the
# workspace staging. Committed, so that every apply uses all of them.
acme_email                   = "ops@spruce.example" # Let's Encrypt's contact for expiry warnings
database_password_generation = 1                    # raise by one to rotate the database passwords
slack_webhooks_generation    = 1                    # raise by one after changing the Slack webhooks in Secrets Manager
dns_zone_name                = "spruce.example"     # the envs stack's dns_zone_name: the tools are at <tool>.internal.staging.<it>
sso_generation               = 1                    # raise by one after changing the SSO client in Secrets Manager
# The internal tools' sign-in: the identity provider's OIDC issuer and the group admitted.
sso = {
  issuer_url    = "https://login.spruce.example"
  allowed_group = "spruce-team"
}
