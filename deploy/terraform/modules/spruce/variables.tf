variable "environment" {
  description = "e2e, staging or prod"
  type        = string
  validation {
    condition     = contains(["e2e", "staging", "prod"], var.environment)
    error_message = "environment must be e2e, staging or prod"
  }
}

variable "region" {
  type    = string
  default = "eu-west-1"
}

variable "vpc_cidr" {
  type    = string
  default = "10.0.0.0/16"
}

variable "availability_zones" {
  type    = list(string)
  default = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
}

# EKS's standard support: 1.31 is past even its extended support. The chart is validated
# against this version's schemas (tests/deploy, KUBE_VERSION): raise both together.
variable "kubernetes_version" {
  type    = string
  default = "1.33"
}

variable "node_instance_types" {
  type    = list(string)
  default = ["m6i.large"]
}

variable "node_count" {
  type = object({ min = number, desired = number, max = number })
}

variable "search_node_instance_types" {
  type    = list(string)
  default = ["c6i.xlarge"]
}

variable "search_node_count" {
  type = object({ min = number, desired = number, max = number })
}

variable "db_instance_class" {
  type = string
}

variable "db_multi_az" {
  type = bool
}

variable "redis_node_type" {
  type = string
}

variable "mq_instance_type" {
  type = string
}

# The log index (logs.tf): one data node per availability zone.
variable "logs_instance_type" {
  type = string
}

variable "logs_volume_gb" {
  type = number
}

variable "logs_dedicated_masters" {
  type = bool
}

variable "dns_zone_name" {
  description = "An existing public Route 53 zone, e.g. spruce.example"
  type        = string
}

variable "api_hostname" {
  description = "The gateway's name in that zone, e.g. api.staging"
  type        = string
}

variable "ingress_load_balancer_dns" {
  description = "DNS name of the ingress controller's load balancer (empty until it exists)"
  type        = string
  default     = ""
}

variable "services" {
  type    = list(string)
  default = ["gateway", "core", "search", "scheduler"]
}

variable "deployer_role_arn" {
  description = "IAM role CD assumes to run helm (GitHub OIDC); empty: no access entry"
  type        = string
  default     = ""
}

variable "deploy_runner_security_group_ids" {
  description = "Security groups of the self-hosted CD runners inside the VPC, allowed to the private EKS API endpoint on 443"
  type        = list(string)
  default     = []
}

# AWS Client VPN for the team (internal.tf): off where the team's own VPN reaches the VPC.
variable "client_vpn" {
  type = object({
    enabled                = bool
    server_certificate_arn = string # an ACM certificate for the endpoint
    saml_provider_arn      = string # the IAM SAML provider of the identity provider
    group_id               = string # the identity provider's group admitted
    client_cidr            = string # addresses given to clients, outside the VPC's
  })
  validation {
    condition = !var.client_vpn.enabled || (
      startswith(var.client_vpn.server_certificate_arn, "arn:aws:acm:") &&
      startswith(var.client_vpn.saml_provider_arn, "arn:aws:iam::") &&
      var.client_vpn.group_id != ""
    )
    error_message = "an enabled client_vpn needs its certificate, its SAML provider and the group it admits"
  }
}
