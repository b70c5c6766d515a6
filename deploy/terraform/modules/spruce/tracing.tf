# ---------------------------------------------------------------- traces

# Tempo (platform stack) stores the traces the collector keeps in the traces bucket
# (storage.tf), through its own ServiceAccount's role.
resource "aws_iam_role" "tempo" {
  name               = "${local.name}-tempo"
  assume_role_policy = data.aws_iam_policy_document.irsa["tempo"].json
  tags               = local.tags
}

resource "aws_iam_role_policy" "tempo" {
  name = "trace-blocks"
  role = aws_iam_role.tempo.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect   = "Allow"
        Action   = ["s3:ListBucket"]
        Resource = aws_s3_bucket.traces.arn
      },
      {
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:GetObjectTagging", "s3:PutObjectTagging"]
        Resource = "${aws_s3_bucket.traces.arn}/*"
      },
      {
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource = aws_kms_key.main.arn
      },
    ]
  })
}

# Grafana (kube-prometheus-stack) reads the log index, signing its requests with this role
# (mapped to a reader of spruce-logs-* by the platform stack).
resource "aws_iam_role" "grafana" {
  name               = "${local.name}-grafana"
  assume_role_policy = data.aws_iam_policy_document.irsa["grafana"].json
  tags               = local.tags
}

resource "aws_iam_role_policy" "grafana" {
  name = "read-logs"
  role = aws_iam_role.grafana.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["es:ESHttpGet", "es:ESHttpPost", "es:ESHttpHead"]
      Resource = "${aws_opensearch_domain.logs.arn}/*"
    }]
  })
}
