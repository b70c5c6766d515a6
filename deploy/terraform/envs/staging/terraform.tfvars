# Everything the steps of docs/deploying.md set for staging, committed so that every apply
# uses all of it. Replace the placeholders with your account's values as the steps say.
deployer_role_arn                = "arn:aws:iam::123456789012:role/spruce-cd-staging" # step 1: bootstrap's deploy_role_arns["staging"]
deploy_runner_security_group_ids = []                                                 # step 5: the runner's security group
ingress_load_balancer_dns        = ""                                                 # step 7: the ingress controller's load balancer
dns_zone_name                    = "spruce.example"                                   # your public Route 53 zone
