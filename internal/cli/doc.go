// Package cli is the drover command line: kubeconfig-driven commands for what kubectl does not do,
// such as creating an activation and printing the command that registers a host with it.
package cli
