//go:build tools

// Package tools pins build-time dependencies.
package tools
