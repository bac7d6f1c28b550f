package query

import (
	"regexp"
	"slices"
	"strings"
)

// Expr is a parsed expression. It is immutable and safe for concurrent use.
type Expr interface {
	// Matches reports whether the instance satisfies the expression.
	Matches(in *Instance) bool
	// String renders the expression in canonical form; Parse accepts it and gives the same expression.
	String() string
}

// orExpr holds when any of its operands holds; it has at least two, none of them an orExpr.
type orExpr []Expr

// andExpr holds when all of its operands hold; it has at least two, none of them an andExpr.
type andExpr []Expr

// notExpr holds when its operand does not.
type notExpr struct{ x Expr }

// predicate is "subject operator [argument]".
type predicate struct {
	subject string // as written, e.g. agentVersion or attribute:ecs.os-type
	kind    subjectKind
	attr    string // the attribute name, for subjAttribute
	op      op
	args    []operand      // the values; one, or several for in and !in; none for exists and !exists
	re      *regexp.Regexp // the regular expression of =~ and !~, preferring leftmost-longest matches
}

func (x orExpr) String() string { return join(x, " or ", nil) }

func (x andExpr) String() string {
	return join(x, " and ", func(e Expr) bool { _, isOr := e.(orExpr); return isOr })
}

func (x notExpr) String() string { return "not (" + x.x.String() + ")" }

func (p *predicate) String() string {
	var b strings.Builder
	b.WriteString(p.subject)
	b.WriteByte(' ')
	b.WriteString(p.op.String())
	switch p.op.arity() {
	case arityOne:
		b.WriteByte(' ')
		b.WriteString(quote(p.args[0].text))
	case arityList:
		b.WriteString(" [")
		for i, a := range p.args {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quote(a.text))
		}
		b.WriteByte(']')
	}
	return b.String()
}

// join renders operands separated by sep, parenthesizing those for which paren is true.
func join(xs []Expr, sep string, paren func(Expr) bool) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = x.String()
		if paren != nil && paren(x) {
			parts[i] = "(" + parts[i] + ")"
		}
	}
	return strings.Join(parts, sep)
}

// quote renders a value bare when it can be written bare, otherwise in quotes that it does not contain (a
// parsed value never contains both kinds).
func quote(v string) string {
	switch {
	case isBareWord(v) && !isLogical(token{kind: tokWord, text: v}):
		return v
	case !strings.ContainsRune(v, '\''):
		return "'" + v + "'"
	default:
		return `"` + v + `"`
	}
}

// op is a comparison operator.
type op int

const (
	opEq op = iota + 1
	opNe
	opGt
	opGe
	opLt
	opLe
	opExists
	opNotExists
	opIn
	opNotIn
	opMatch
	opNotMatch
)

// ops maps every spelling of an operator, in lower case, to the operator.
var ops = map[string]op{
	"==": opEq, "equals": opEq,
	"!=": opNe, "not_equals": opNe,
	">": opGt, "greater_than": opGt,
	">=": opGe, "greater_than_equal": opGe,
	"<": opLt, "less_than": opLt,
	"<=": opLe, "less_than_equal": opLe,
	"exists":  opExists,
	"!exists": opNotExists, "not_exists": opNotExists,
	"in":  opIn,
	"!in": opNotIn, "not_in": opNotIn,
	"=~": opMatch, "matches": opMatch,
	"!~": opNotMatch, "not_matches": opNotMatch,
}

// String returns the operator's canonical spelling.
func (o op) String() string {
	return [...]string{
		opEq: "==", opNe: "!=", opGt: ">", opGe: ">=", opLt: "<", opLe: "<=", opExists: "exists",
		opNotExists: "!exists", opIn: "in", opNotIn: "!in", opMatch: "=~", opNotMatch: "!~",
	}[o]
}

type arity int

const (
	arityNone arity = iota // exists, !exists
	arityOne               // every other operator
	arityList              // in, !in
)

func (o op) arity() arity {
	switch o {
	case opExists, opNotExists:
		return arityNone
	case opIn, opNotIn:
		return arityList
	}
	return arityOne
}

// positive splits a negative operator into the operator it negates and true; it returns any other
// operator unchanged and false. A negative operator holds exactly when its positive one does not, which
// is why it holds for an absent subject.
func (o op) positive() (op, bool) {
	switch o {
	case opNe:
		return opEq, true
	case opNotExists:
		return opExists, true
	case opNotIn:
		return opIn, true
	case opNotMatch:
		return opMatch, true
	}
	return o, false
}

// subjectKind identifies what a predicate reads from an instance.
type subjectKind int

const (
	subjAgentConnected subjectKind = iota
	subjAgentVersion
	subjRegisteredAt
	subjRunningTasksCount
	subjInstanceID
	subjTaskGroup
	subjAttribute
)

// valueType is how a subject's values compare.
type valueType int

const (
	valString valueType = iota
	valBool
	valNumber
	valVersion
	valTime
)

// subjectSpec is what a kind of subject supports.
type subjectSpec struct {
	ops   []op // in the order error messages list them
	value valueType
}

var (
	equality  = []op{opEq, opNe, opIn, opNotIn}
	ordering  = []op{opGt, opGe, opLt, opLe}
	matching  = []op{opMatch, opNotMatch}
	existence = []op{opExists, opNotExists}
)

var subjectSpecs = [...]subjectSpec{
	subjAgentConnected:    {ops: equality, value: valBool},
	subjAgentVersion:      {ops: concat(equality, ordering, matching), value: valVersion},
	subjRegisteredAt:      {ops: concat([]op{opEq, opNe}, ordering), value: valTime},
	subjRunningTasksCount: {ops: concat(equality, ordering), value: valNumber},
	subjInstanceID:        {ops: concat(equality, ordering, matching), value: valString},
	subjTaskGroup:         {ops: concat(equality, matching), value: valString},
	subjAttribute:         {ops: concat(equality, ordering, matching, existence), value: valString},
}

// subjects maps the names of the subjects other than attribute:NAME to their kinds.
var subjects = map[string]subjectKind{
	"agentConnected":    subjAgentConnected,
	"agentVersion":      subjAgentVersion,
	"registeredAt":      subjRegisteredAt,
	"runningTasksCount": subjRunningTasksCount,
	"ec2InstanceId":     subjInstanceID,
	"instanceId":        subjInstanceID,
	"task:group":        subjTaskGroup,
}

// subjectList is the list of valid subjects for error messages.
const subjectList = "agentConnected, agentVersion, registeredAt, runningTasksCount, ec2InstanceId, instanceId, " +
	"task:group or attribute:NAME"

const attributePrefix = "attribute:"

func (s subjectSpec) supports(o op) bool { return slices.Contains(s.ops, o) }

// opList renders the supported operators as "==, != or in".
func (s subjectSpec) opList() string {
	names := make([]string, len(s.ops))
	for i, o := range s.ops {
		names[i] = o.String()
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

func concat(lists ...[]op) []op {
	var out []op
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}
