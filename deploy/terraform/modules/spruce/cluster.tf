# ---------------------------------------------------------------- EKS

resource "aws_iam_role" "cluster" {
  name = "${local.name}-eks"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "eks.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
  tags = local.tags
}

resource "aws_iam_role_policy_attachment" "cluster" {
  role       = aws_iam_role.cluster.name
  policy_arn = "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"
}

resource "aws_eks_cluster" "main" {
  name     = local.name
  version  = var.kubernetes_version
  role_arn = aws_iam_role.cluster.arn
  vpc_config {
    subnet_ids              = aws_subnet.private[*].id
    endpoint_private_access = true
    endpoint_public_access  = false
  }
  encryption_config {
    resources = ["secrets"]
    provider {
      key_arn = aws_kms_key.main.arn
    }
  }
  # Whoever applies this stack is a cluster admin: they apply deploy/terraform/platform.
  access_config {
    authentication_mode                         = "API"
    bootstrap_cluster_creator_admin_permissions = true
  }
  enabled_cluster_log_types = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
  tags                      = local.tags
  depends_on                = [aws_iam_role_policy_attachment.cluster]
}

# The API endpoint is private: CD deploys from runners inside the VPC, with this role.
resource "aws_eks_access_entry" "deployer" {
  count         = var.deployer_role_arn == "" ? 0 : 1
  cluster_name  = aws_eks_cluster.main.name
  principal_arn = var.deployer_role_arn
}

resource "aws_eks_access_policy_association" "deployer" {
  count         = var.deployer_role_arn == "" ? 0 : 1
  cluster_name  = aws_eks_cluster.main.name
  principal_arn = var.deployer_role_arn
  # Admin of the namespace spruce alone (the platform stack creates it): what a Helm
  # release of the chart needs, and nothing in kube-system, vault or any other namespace.
  policy_arn = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSAdminPolicy"
  access_scope {
    type       = "namespace"
    namespaces = ["spruce"]
  }
  # The entry must exist first, or the association can fail on a fresh apply.
  depends_on = [aws_eks_access_entry.deployer]
}

# The API endpoint is private and its security group admits only the cluster itself: the
# CD runners' own security groups must be let in, or `helm upgrade` cannot connect.
resource "aws_vpc_security_group_ingress_rule" "api_from_deploy_runners" {
  for_each                     = toset(var.deploy_runner_security_group_ids)
  security_group_id            = aws_eks_cluster.main.vpc_config[0].cluster_security_group_id
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  description                  = "CD runners to the Kubernetes API"
  tags                         = local.tags
}

# The VPC CNI enforces NetworkPolicies only with its network policy agent switched on;
# without it the chart's policies are accepted and do nothing.
resource "aws_eks_addon" "vpc_cni" {
  cluster_name                = aws_eks_cluster.main.name
  addon_name                  = "vpc-cni"
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "OVERWRITE"
  configuration_values        = jsonencode({ enableNetworkPolicy = "true" })
  tags                        = local.tags
}

# The HPAs scale on CPU, which only metrics-server reports (an EKS community add-on). It
# needs nodes to run on.
resource "aws_eks_addon" "metrics_server" {
  cluster_name                = aws_eks_cluster.main.name
  addon_name                  = "metrics-server"
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "OVERWRITE"
  tags                        = local.tags
  depends_on                  = [aws_eks_node_group.general]
}

resource "aws_iam_role" "nodes" {
  name = "${local.name}-nodes"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "ec2.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
  tags = local.tags
}

resource "aws_iam_role_policy_attachment" "nodes" {
  for_each = toset([
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
  ])
  role       = aws_iam_role.nodes.name
  policy_arn = each.value
}

resource "aws_eks_node_group" "general" {
  cluster_name    = aws_eks_cluster.main.name
  node_group_name = "general"
  node_role_arn   = aws_iam_role.nodes.arn
  subnet_ids      = aws_subnet.private[*].id
  instance_types  = var.node_instance_types
  scaling_config {
    min_size     = var.node_count.min
    desired_size = var.node_count.desired
    max_size     = var.node_count.max
  }
  update_config {
    max_unavailable = 1
  }
  # The cluster autoscaler (platform stack) sets the size between min and max; an apply
  # must not reset it.
  lifecycle {
    ignore_changes = [scaling_config[0].desired_size]
  }
  tags       = local.tags
  depends_on = [aws_iam_role_policy_attachment.nodes]
}

# search's recommendation and duration models get nodes of their own (helm values:
# search.nodeSelector workload=search and a toleration for the taint).
resource "aws_eks_node_group" "search" {
  cluster_name    = aws_eks_cluster.main.name
  node_group_name = "search"
  node_role_arn   = aws_iam_role.nodes.arn
  subnet_ids      = aws_subnet.private[*].id
  instance_types  = var.search_node_instance_types
  labels          = { workload = "search" }
  taint {
    key    = "dedicated"
    value  = "search"
    effect = "NO_SCHEDULE"
  }
  scaling_config {
    min_size     = var.search_node_count.min
    desired_size = var.search_node_count.desired
    max_size     = var.search_node_count.max
  }
  update_config {
    max_unavailable = 1
  }
  # The cluster autoscaler (platform stack) sets the size between min and max; an apply
  # must not reset it.
  lifecycle {
    ignore_changes = [scaling_config[0].desired_size]
  }
  tags       = local.tags
  depends_on = [aws_iam_role_policy_attachment.nodes]
}

# IAM roles for service accounts: the cluster's OIDC issuer, and one role the chart's
# service account assumes (serviceAccount.annotations eks.amazonaws.com/role-arn).
data "tls_certificate" "oidc" {
  url = aws_eks_cluster.main.identity[0].oidc[0].issuer
}

resource "aws_iam_openid_connect_provider" "eks" {
  url             = aws_eks_cluster.main.identity[0].oidc[0].issuer
  client_id_list  = ["sts.amazonaws.com"]
  thumbprint_list = [data.tls_certificate.oidc.certificates[0].sha1_fingerprint]
  tags            = local.tags
}

locals {
  oidc_host = replace(aws_eks_cluster.main.identity[0].oidc[0].issuer, "https://", "")
}

# Who may assume a role through the cluster's OIDC issuer: the ServiceAccounts listed.
data "aws_iam_policy_document" "irsa" {
  for_each = {
    services           = [for service in var.services : "system:serviceaccount:spruce:spruce-${service}"]
    cluster-autoscaler = ["system:serviceaccount:kube-system:cluster-autoscaler"]
    vault              = ["system:serviceaccount:vault:vault"]
    fluent-bit         = ["system:serviceaccount:logging:fluent-bit"]
    tempo              = ["system:serviceaccount:monitoring:tempo"]
    grafana            = ["system:serviceaccount:monitoring:kube-prometheus-stack-grafana"]
  }
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.eks.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:sub"
      values   = each.value
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

# The chart's component ServiceAccounts (spruce-<component>).
resource "aws_iam_role" "spruce" {
  name               = "${local.name}-services"
  assume_role_policy = data.aws_iam_policy_document.irsa["services"].json
  tags               = local.tags
}

# ---------------------------------------------------------------- nodes follow pods

# The cluster autoscaler (platform stack) grows and shrinks both node groups between their
# min and max as pods wait or nodes idle. EKS tags a managed node group's Auto Scaling
# group k8s.io/cluster-autoscaler/enabled and k8s.io/cluster-autoscaler/<cluster>, which it
# discovers them by; it may change only groups so tagged.
resource "aws_iam_role" "cluster_autoscaler" {
  name               = "${local.name}-cluster-autoscaler"
  assume_role_policy = data.aws_iam_policy_document.irsa["cluster-autoscaler"].json
  tags               = local.tags
}

resource "aws_iam_role_policy" "cluster_autoscaler" {
  #checkov:skip=CKV_AWS_355:EKS names the node groups' Auto Scaling groups itself; scaling is limited to this cluster's groups by their tag (condition), and the Describe calls take no resource
  name = "autoscale"
  role = aws_iam_role.cluster_autoscaler.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid    = "Discover"
        Effect = "Allow"
        Action = [
          "autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeAutoScalingInstances",
          "autoscaling:DescribeLaunchConfigurations", "autoscaling:DescribeScalingActivities",
          "autoscaling:DescribeTags", "ec2:DescribeImages", "ec2:DescribeInstanceTypes",
          "ec2:DescribeLaunchTemplateVersions", "ec2:GetInstanceTypesFromInstanceRequirements",
        ]
        Resource = "*"
      },
      {
        Sid      = "OwnNodeGroups"
        Effect   = "Allow"
        Action   = "eks:DescribeNodegroup"
        Resource = "arn:aws:eks:${var.region}:${data.aws_caller_identity.current.account_id}:nodegroup/${local.name}/*/*"
      },
      {
        Sid      = "ScaleOwnGroups"
        Effect   = "Allow"
        Action   = ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"]
        Resource = "*"
        Condition = {
          StringEquals = { "aws:ResourceTag/k8s.io/cluster-autoscaler/${local.name}" = "owned" }
        }
      },
    ]
  })
}

# ---------------------------------------------------------------- Vault

# Vault (platform stack) unseals itself with this key: no unseal keys for a person to keep,
# and a restarted pod rejoins the raft cluster on its own.
resource "aws_kms_key" "vault" {
  description             = "${local.name}: Vault auto-unseal"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = local.account_administers_key
  tags                    = local.tags
}

resource "aws_kms_alias" "vault" {
  name          = "alias/${local.name}-vault"
  target_key_id = aws_kms_key.vault.key_id
}

resource "aws_iam_role" "vault" {
  name               = "${local.name}-vault"
  assume_role_policy = data.aws_iam_policy_document.irsa["vault"].json
  tags               = local.tags
}

resource "aws_iam_role_policy" "vault" {
  name = "unseal"
  role = aws_iam_role.vault.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"]
      Resource = aws_kms_key.vault.arn
    }]
  })
}

resource "aws_iam_role_policy" "spruce_uploads" {
  name = "uploads"
  role = aws_iam_role.spruce.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      # Photos and documents are written, read and replaced; a deleted account's are listed
      # and removed (the scheduler), and the analytics archive is written.
      { Effect = "Allow", Action = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], Resource = "${aws_s3_bucket.uploads.arn}/*" },
      { Effect = "Allow", Action = ["s3:ListBucket"], Resource = aws_s3_bucket.uploads.arn },
      { Effect = "Allow", Action = ["kms:Decrypt", "kms:GenerateDataKey"], Resource = aws_kms_key.main.arn },
    ]
  })
}

# ---------------------------------------------------------------- ECR

# The images live in the account's one registry (deploy/terraform/registry, applied once
# before any environment): CD pushes each commit once and every environment pulls it. The
# nodes' AmazonEC2ContainerRegistryReadOnly policy covers them.
data "aws_ecr_repository" "service" {
  for_each = toset(var.services)
  name     = "spruce-${each.key}"
}
