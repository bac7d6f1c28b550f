package agent

import (
	"context"

	"github.com/moby/moby/client"
)

// Docker is the part of the Docker Engine API the agent uses. Every call takes a context that
// bounds it.
type Docker interface {
	// Version returns the Engine's version, for example 27.3.1.
	Version(ctx context.Context) (string, error)
	// Close releases the connection.
	Close() error
}

// NewDocker returns a client of the Docker Engine at DOCKER_HOST (and the other DOCKER_*
// variables), or at its default socket. It does not connect until first used.
func NewDocker() (Docker, error) {
	c, err := client.New(client.FromEnv)
	if err != nil {
		return nil, err
	}
	return &engine{c: c}, nil
}

type engine struct {
	c *client.Client
}

func (e *engine) Version(ctx context.Context) (string, error) {
	v, err := e.c.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return "", err
	}
	return v.Version, nil
}

func (e *engine) Close() error { return e.c.Close() }
