package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
)

// store keeps the engine's state on the host's disk, so that the agent re-adopts its containers
// after a restart and restarts its tasks after a reboot without the control plane. Every change
// is a committed bbolt transaction: a crash loses nothing that was acknowledged.
type store struct {
	db *bolt.DB
}

var (
	tasksBucket  = []byte("tasks")
	imagesBucket = []byte("images")
)

// taskRecord is what the agent knows of one task bound to its host.
type taskRecord struct {
	// Task is the task as last read from the control plane (metadata and spec), with Status as
	// the agent last computed it.
	Task ecsv1alpha1.Task `json:"task"`
	// Containers are the agent's own notes on each container, by name.
	Containers map[string]*containerRecord `json:"containers,omitempty"`
	// Reported is true once Task.Status has been written to the control plane.
	Reported bool `json:"reported"`
	// Gone is true once the task no longer exists in the control plane: the agent stops it and
	// reports nothing more.
	Gone bool `json:"gone,omitempty"`
}

// containerRecord is the agent's note on one container of a task.
type containerRecord struct {
	// ID is the runtime's container id, once created.
	ID string `json:"id,omitempty"`
	// RestartCount is how often the agent restarted the container under its restartPolicy.
	RestartCount int32 `json:"restartCount,omitempty"`
	// LastRestartAt is when the agent last restarted the container.
	LastRestartAt time.Time `json:"lastRestartAt,omitzero"`
	// ImageDigest is the digest of the image pulled for the container.
	ImageDigest string `json:"imageDigest,omitempty"`
	// Final is true once the container exited and will not be restarted.
	Final bool `json:"final,omitempty"`
	// ExitCode and Reason are kept once the container is final, so that they survive the
	// container's removal.
	ExitCode *int32 `json:"exitCode,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// imageRecord is the agent's note on an image it pulled, for the pull behaviour "once" and for
// image garbage collection, which only ever removes images the agent pulled.
type imageRecord struct {
	// Digest is the repository digest of the last pull.
	Digest   string    `json:"digest,omitempty"`
	PulledAt time.Time `json:"pulledAt"`
	LastUsed time.Time `json:"lastUsed"`
}

func openStore(path string) (*store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("opening %s: another drover-agent holds it; run one agent per state directory", path)
		}
		return nil, fmt.Errorf("opening the task state %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{tasksBucket, imagesBucket} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("preparing the task state %s: %w", path, err)
	}
	return &store{db: db}, nil
}

func (s *store) close() error { return s.db.Close() }

func (s *store) putTask(r *taskRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(tasksBucket).Put([]byte(r.Task.UID), b)
	})
}

func (s *store) deleteTask(uid string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(tasksBucket).Delete([]byte(uid))
	})
}

// getTask returns the record of the task, or nil.
func (s *store) getTask(uid string) (*taskRecord, error) {
	var r *taskRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(tasksBucket).Get([]byte(uid))
		if v == nil {
			return nil
		}
		r = &taskRecord{}
		return json.Unmarshal(v, r)
	})
	return r, err
}

// tasks returns every record. A record that cannot be read is skipped and reported.
func (s *store) tasks() ([]*taskRecord, error) {
	var out []*taskRecord
	var errs []error
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(tasksBucket).ForEach(func(k, v []byte) error {
			r := &taskRecord{}
			if err := json.Unmarshal(v, r); err != nil {
				errs = append(errs, fmt.Errorf("task %s: %w", k, err))
				return nil
			}
			out = append(out, r)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, errors.Join(errs...)
}

func (s *store) image(ref string) (*imageRecord, error) {
	var r *imageRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(imagesBucket).Get([]byte(ref))
		if v == nil {
			return nil
		}
		r = &imageRecord{}
		return json.Unmarshal(v, r)
	})
	return r, err
}

func (s *store) putImage(ref string, r *imageRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(imagesBucket).Put([]byte(ref), b)
	})
}

func (s *store) deleteImage(ref string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(imagesBucket).Delete([]byte(ref))
	})
}

func (s *store) images() (map[string]*imageRecord, error) {
	out := map[string]*imageRecord{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(imagesBucket).ForEach(func(k, v []byte) error {
			r := &imageRecord{}
			if json.Unmarshal(v, r) == nil {
				out[string(k)] = r
			}
			return nil
		})
	})
	return out, err
}
