package query

import (
	"cmp"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Instance is what an expression is evaluated against.
type Instance struct {
	// ID is the ContainerInstance's name, read by instanceId and ec2InstanceId.
	ID string
	// Attributes holds the built-in (ecs.os-type, ...) and custom attributes, read by attribute:NAME.
	Attributes map[string]string
	// AgentConnected is whether the agent is connected.
	AgentConnected bool
	// AgentVersion is the agent's dotted numeric version, such as 1.14.5; empty when unknown.
	AgentVersion string
	// RegisteredAt is when the instance registered; the zero time when unknown.
	RegisteredAt time.Time
	// RunningTasksCount is the number of tasks running on the instance.
	RunningTasksCount int
	// TaskGroups counts the instance's tasks by group (read by task:group); a service's tasks are in group
	// service:NAME.
	TaskGroups map[string]int
}

// noInstance stands in for a nil *Instance: nothing is known about it.
var noInstance Instance

func (x orExpr) Matches(in *Instance) bool {
	for _, y := range x {
		if y.Matches(in) {
			return true
		}
	}
	return false
}

func (x andExpr) Matches(in *Instance) bool {
	for _, y := range x {
		if !y.Matches(in) {
			return false
		}
	}
	return true
}

func (x notExpr) Matches(in *Instance) bool { return !x.x.Matches(in) }

func (p *predicate) Matches(in *Instance) bool {
	if in == nil {
		in = &noInstance
	}
	o, negated := p.op.positive()
	return p.holds(o, in) != negated
}

// holds evaluates a positive operator: true only when the subject is present and satisfies it.
func (p *predicate) holds(o op, in *Instance) bool {
	if p.kind == subjTaskGroup {
		for group, n := range in.TaskGroups {
			if n > 0 && p.test(o, operand{text: group}) {
				return true
			}
		}
		return false
	}
	v, ok := p.lookup(in)
	return ok && p.test(o, v)
}

// lookup reads the predicate's subject from the instance; false when the instance does not have it.
func (p *predicate) lookup(in *Instance) (operand, bool) {
	switch p.kind {
	case subjAgentConnected:
		return operand{flag: in.AgentConnected}, true
	case subjAgentVersion:
		v, ok := parseVersion(instanceVersion(in.AgentVersion))
		return operand{text: in.AgentVersion, version: v}, ok
	case subjRegisteredAt:
		return operand{at: in.RegisteredAt}, !in.RegisteredAt.IsZero()
	case subjRunningTasksCount:
		return operand{num: int64(in.RunningTasksCount)}, true
	case subjInstanceID:
		return operand{text: in.ID}, true
	case subjAttribute:
		v, ok := in.Attributes[p.attr]
		return operand{text: v}, ok
	}
	return operand{}, false
}

// test applies a positive operator to a value the subject has.
func (p *predicate) test(o op, v operand) bool {
	t := subjectSpecs[p.kind].value
	switch o {
	case opExists:
		return true
	case opMatch:
		return matchesWhole(p.re, v.text)
	case opIn:
		for _, a := range p.args {
			if compare(t, v, a) == 0 {
				return true
			}
		}
		return false
	}
	c := compare(t, v, p.args[0])
	switch o {
	case opEq:
		return c == 0
	case opGt:
		return c > 0
	case opGe:
		return c >= 0
	case opLt:
		return c < 0
	case opLe:
		return c <= 0
	}
	return false
}

// matchesWhole reports whether re, which prefers leftmost-longest matches, matches all of s. A match of
// all of s starts as far left as any can and is as long as any can be, so re finds it when there is one.
func matchesWhole(re *regexp.Regexp, s string) bool {
	loc := re.FindStringIndex(s)
	return loc != nil && loc[0] == 0 && loc[1] == len(s)
}

// operand is a value of a predicate or of an instance; which fields are set depends on its valueType.
type operand struct {
	text    string // the value as written; for valString, the value
	flag    bool
	num     int64
	version version
	at      time.Time
}

// parseOperand reads text as a value of type t.
func parseOperand(t valueType, text string) (operand, bool) {
	a := operand{text: text}
	ok := true
	switch t {
	case valBool:
		switch keyword(text) {
		case "true":
			a.flag = true
		case "false":
		default:
			ok = false
		}
	case valNumber:
		ok = text != "" && strings.Trim(text, "0123456789") == ""
		if ok {
			var err error
			a.num, err = strconv.ParseInt(text, 10, 64)
			ok = err == nil
		}
	case valVersion:
		a.version, ok = parseVersion(text)
	case valTime:
		a.at, ok = parseTime(text)
	}
	return a, ok
}

// compare orders two values of type t.
func compare(t valueType, a, b operand) int {
	switch t {
	case valBool:
		if a.flag == b.flag {
			return 0
		}
		if b.flag {
			return -1
		}
		return 1
	case valNumber:
		return cmp.Compare(a.num, b.num)
	case valVersion:
		return a.version.compare(b.version)
	case valTime:
		return a.at.Compare(b.at)
	}
	return strings.Compare(a.text, b.text)
}

// version is a dotted numeric version; each part is a decimal number without leading zeros, kept as text
// so that no part is too large.
type version []string

// parseVersion reads numbers separated by dots, such as 1.14.5.
func parseVersion(s string) (version, bool) {
	if s == "" {
		return nil, false
	}
	v := strings.Split(s, ".")
	for i, part := range v {
		if part == "" || strings.Trim(part, "0123456789") != "" {
			return nil, false
		}
		v[i] = strings.TrimLeft(part, "0")
	}
	return v, true
}

// instanceVersion takes the dotted numeric part of an agent's version: without a leading "v", and up to
// the first character that is neither a digit nor a dot (as in 1.14.5-rc1).
func instanceVersion(s string) string {
	s = strings.TrimPrefix(s, "v")
	if i := strings.IndexFunc(s, func(r rune) bool { return r != '.' && (r < '0' || r > '9') }); i >= 0 {
		s = s[:i]
	}
	return s
}

// compare orders versions part by part, numerically; missing parts count as 0.
func (v version) compare(w version) int {
	for i := range max(len(v), len(w)) {
		var a, b string // "" is 0: parts have no leading zeros
		if i < len(v) {
			a = v[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if c := cmp.Or(cmp.Compare(len(a), len(b)), strings.Compare(a, b)); c != 0 {
			return c
		}
	}
	return 0
}

// timeLayouts are the accepted forms of a registeredAt value; those without a zone are UTC.
var timeLayouts = []string{time.RFC3339, "2006-01-02T15:04:05", time.DateOnly}

func parseTime(s string) (time.Time, bool) {
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
