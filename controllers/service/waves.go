package service

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
)

const defaultWaveBake = 60 * time.Second

// wave is the part of the cluster a deployment replaces tasks on in this pass.
type wave struct {
	// index and count number the waves, from 1.
	index, count int
	// groups are the attribute values of the wave's instances ("" for instances without it).
	groups map[string]bool
	// constraint keeps the wave's new tasks on the wave's instances.
	constraint ecsv1alpha1.PlacementConstraint
}

func wavesOf(svc *ecsv1alpha1.Service) *ecsv1alpha1.Waves {
	if svc.Spec.DeploymentConfiguration == nil || svc.Spec.SchedulingStrategy == ecsv1alpha1.SchedulingStrategyDaemon {
		return nil
	}
	return svc.Spec.DeploymentConfiguration.Waves
}

// groupOf is the value of the waves' attribute on the task's instance, and whether the instance is
// known.
func groupOf(s *scope, attr string, t *ecsv1alpha1.Task) (string, bool) {
	ci := s.instances[t.Spec.ContainerInstance]
	if ci == nil {
		return "", false
	}
	return attributeOf(ci, attr), true
}

func attributeOf(ci *ecsv1alpha1.ContainerInstance, attr string) string {
	v := ""
	for _, a := range ci.Status.Attributes {
		if a.Name == attr {
			v = a.Value
		}
	}
	for _, a := range ci.Spec.Attributes {
		if a.Name == attr {
			v = a.Value
		}
	}
	return v
}

// orderGroups sorts attribute values as people number stores: numbers by value, then the rest by
// text, and the instances without the attribute last.
func orderGroups(groups []string) {
	slices.SortFunc(groups, func(a, b string) int {
		switch {
		case a == b:
			return 0
		case a == "":
			return 1
		case b == "":
			return -1
		}
		na, ea := strconv.ParseFloat(a, 64)
		nb, eb := strconv.ParseFloat(b, 64)
		switch {
		case ea == nil && eb == nil && na != nb:
			if na < nb {
				return -1
			}
			return 1
		case ea == nil && eb != nil:
			return -1
		case ea != nil && eb == nil:
			return 1
		}
		return strings.Compare(a, b)
	})
}

// waveConstraint is the memberOf expression that selects the instances of the groups.
func waveConstraint(attr string, groups []string) ecsv1alpha1.PlacementConstraint {
	var vals []string
	none := false
	for _, g := range groups {
		if g == "" {
			none = true
			continue
		}
		vals = append(vals, "'"+g+"'")
	}
	var parts []string
	if len(vals) > 0 {
		parts = append(parts, fmt.Sprintf("attribute:%s in [%s]", attr, strings.Join(vals, ", ")))
	}
	if none {
		parts = append(parts, fmt.Sprintf("attribute:%s !exists", attr))
	}
	expr := strings.Join(parts, " or ")
	if len(parts) > 1 {
		expr = "(" + parts[0] + ") or (" + parts[1] + ")"
	}
	return ecsv1alpha1.PlacementConstraint{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: expr}
}

// currentWave finds the wave the deployment of s.revision works on: the first whose instances
// still run tasks of other revisions, or whose new tasks are not all RUNNING and healthy yet. It
// returns nil when every wave is done or the service has no waves. When the previous wave is done
// but has not baked yet, it returns how long to wait.
func (r *Reconciler) currentWave(s *scope) (*wave, time.Duration) {
	w := wavesOf(s.svc)
	if w == nil {
		return nil, 0
	}
	old := false
	for _, t := range activeTasks(s.tasks) {
		if t.Spec.TaskDefinitionRevision != s.revision.Name {
			old = true
		}
	}
	if !old {
		return nil, 0
	}
	seen := map[string]bool{}
	var groups []string
	for _, ci := range s.instances {
		if g := attributeOf(ci, w.Attribute); !seen[g] {
			seen[g] = true
			groups = append(groups, g)
		}
	}
	orderGroups(groups)
	per := 1
	if w.MaxConcurrentGroups != nil && *w.MaxConcurrentGroups > 0 {
		per = int(*w.MaxConcurrentGroups)
	}
	bake := defaultWaveBake
	if w.BakeTimeSeconds != nil {
		bake = time.Duration(*w.BakeTimeSeconds) * time.Second
	}
	count := (len(groups) + per - 1) / per
	var doneAt time.Time
	for i := 0; i < count; i++ {
		set := map[string]bool{}
		for _, g := range groups[i*per : min((i+1)*per, len(groups))] {
			set[g] = true
		}
		busy := false
		var latest time.Time
		for _, t := range activeTasks(s.tasks) {
			g, known := groupOf(s, w.Attribute, t)
			newRev := t.Spec.TaskDefinitionRevision == s.revision.Name
			switch {
			case newRev && !known:
				// Not placed yet: it belongs to the wave that created it, which is still running.
				if isWaveTask(t, i+1) {
					busy = true
				}
			case !set[g]:
			case !newRev:
				busy = true
			case !r.healthyRunning(s, t) || t.Status.StartedAt == nil:
				busy = true
			case t.Status.StartedAt.After(latest):
				latest = t.Status.StartedAt.Time
			}
		}
		if busy {
			if i > 0 && !doneAt.IsZero() {
				if wait := doneAt.Add(bake).Sub(r.now()); wait > 0 && !waveStarted(s, i+1) {
					return &wave{index: i + 1, count: count, groups: set}, wait
				}
			}
			sorted := make([]string, 0, len(set))
			for g := range set {
				sorted = append(sorted, g)
			}
			orderGroups(sorted)
			return &wave{index: i + 1, count: count, groups: set, constraint: waveConstraint(w.Attribute, sorted)}, 0
		}
		if !latest.IsZero() {
			doneAt = latest
		}
	}
	return nil, 0
}

// LabelWave is the label that tells which wave of its deployment started a task.
const LabelWave = "ecs.drover.dev/wave"

func isWaveTask(t *ecsv1alpha1.Task, index int) bool {
	return t.Labels[LabelWave] == strconv.Itoa(index)
}

// waveStarted tells whether the wave already started tasks (its bake is then over).
func waveStarted(s *scope, index int) bool {
	for i := range s.tasks {
		if t := &s.tasks[i]; t.Spec.TaskDefinitionRevision == s.revision.Name && isWaveTask(t, index) {
			return true
		}
	}
	return false
}

func (w *wave) describe(attr string) string {
	groups := make([]string, 0, len(w.groups))
	for g := range w.groups {
		if g == "" {
			g = "(none)"
		}
		groups = append(groups, g)
	}
	orderGroups(groups)
	return fmt.Sprintf("wave %d of %d (%s=%s)", w.index, w.count, attr, strings.Join(groups, ","))
}

// inWave tells whether the task is in the groups of the wave the deployment works on (always, when
// the service has no waves).
func (s *scope) inWave(t *ecsv1alpha1.Task) bool {
	if s.wave == nil {
		return true
	}
	g, known := groupOf(s, wavesOf(s.svc).Attribute, t)
	return known && s.wave.groups[g]
}
