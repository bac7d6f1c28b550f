#!/usr/bin/env bash
# Generates OpenAPI definitions for the built-in Kubernetes types droverd serves itself
# (core/v1 Namespace and Event, coordination/v1 Lease, the auth review types).
set -euo pipefail
cd "$(dirname "$0")/.."
out=internal/apiserver/openapi
go tool openapi-gen \
  --go-header-file hack/boilerplate.go.txt \
  --output-dir "$out" \
  --output-pkg github.com/drover-dev/drover/$out \
  --output-file zz_generated.openapi.go \
  --report-filename /dev/null \
  k8s.io/api/core/v1 \
  k8s.io/api/coordination/v1 \
  k8s.io/api/authentication/v1 \
  k8s.io/api/authorization/v1 \
  k8s.io/apimachinery/pkg/apis/meta/v1 \
  k8s.io/apimachinery/pkg/runtime \
  k8s.io/apimachinery/pkg/version \
  k8s.io/apimachinery/pkg/api/resource \
  k8s.io/apimachinery/pkg/util/intstr
