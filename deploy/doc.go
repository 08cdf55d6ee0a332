// Package deploy holds imagebutler's deployment files: the kustomize base
// (kustomize/), the Helm chart (helm/imagebutler/), the IAM policies (iam/)
// and the LocalStack compose setup (localstack/). Its tests render the
// kustomize base and the chart and check what a cluster would run.
package deploy
