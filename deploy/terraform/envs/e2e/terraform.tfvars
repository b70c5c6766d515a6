# Everything the steps of docs/deploying.md set for e2e, committed so that every apply
# uses all of it. Replace the placeholders with your account's values as the steps say.
deployer_role_arn                = "arn:aws:iam::123456789012:role/spruce-cd-e2e" # step 1: bootstrap's deploy_role_arns["e2e"]
deploy_runner_security_group_ids = []                                             # step 5: the runner's security group
ingress_load_balancer_dns        = ""                                             # step 7: the ingress controller's load balancer
dns_zone_name                    = "spruce.example"                               # your public Route 53 zone
