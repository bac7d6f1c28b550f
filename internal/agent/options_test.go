package agent

import (
	"strings"
	"testing"
	"time"
)

func TestRunOptionsNameEachBadFlagOnce(t *testing.T) {
	o := NewRunOptions()
	o.ImagePullBehavior = "sometimes"
	o.ImageCleanupInterval = -time.Hour
	err := o.Validate()
	if err == nil {
		t.Fatal("a bad --image-pull-behavior and a negative --image-cleanup-interval must be refused")
	}
	for _, flag := range []string{"--image-pull-behavior", "--image-cleanup-interval"} {
		if n := strings.Count(err.Error(), flag); n != 1 {
			t.Errorf("%s is named %d times in %q, want once", flag, n, err)
		}
	}
	if o := NewRunOptions(); o.Validate() != nil {
		t.Errorf("the defaults are valid, got %v", o.Validate())
	}
}
