package query

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The instances the examples are evaluated against.
var (
	instA = &Instance{
		ID: "i-abcd1234",
		Attributes: map[string]string{
			"ecs.instance-type": "t2.small", "ecs.availability-zone": "us-east-1a", "ecs.os-type": "linux", "store": "",
		},
		AgentConnected:    true,
		AgentVersion:      "1.14.4",
		RegisteredAt:      time.Date(2018, 1, 1, 0, 0, 0, 0, time.UTC),
		RunningTasksCount: 1,
		TaskGroups:        map[string]int{"service:production": 2},
	}
	instB = &Instance{
		ID:                "i-wxyx7890",
		Attributes:        map[string]string{"ecs.instance-type": "g2.2xlarge", "ecs.availability-zone": "us-east-1c", "store": "x"},
		AgentConnected:    false,
		AgentVersion:      "1.14.10",
		RegisteredAt:      time.Date(2019, 5, 5, 12, 0, 0, 0, time.UTC),
		RunningTasksCount: 0,
		TaskGroups:        map[string]int{"database": 1},
	}
	instC = &Instance{
		ID:                "i-0000",
		Attributes:        map[string]string{"region": "eu"},
		AgentConnected:    true,
		RunningTasksCount: 3,
		TaskGroups:        map[string]int{"service:production": 0},
	}
)

// specExamples are the valid examples of QUERY-LANGUAGE.md, with their canonical form and whether they
// match instA, instB and instC.
var specExamples = []struct {
	expr, canonical string
	want            [3]bool
}{
	{"attribute:ecs.instance-type == t2.small", "attribute:ecs.instance-type == t2.small", [3]bool{true, false, false}},
	{"attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", [3]bool{true, false, false}},
	{"attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d", "attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d", [3]bool{false, true, false}},
	{"task:group == service:production", "task:group == service:production", [3]bool{true, false, false}},
	{"not(task:group == database)", "not (task:group == database)", [3]bool{true, false, true}},
	{"runningTasksCount == 1", "runningTasksCount == 1", [3]bool{true, false, false}},
	{"agentVersion < 1.14.5", "agentVersion < 1.14.5", [3]bool{true, false, false}},
	{"registeredAt < 2018-02-13", "registeredAt < 2018-02-13", [3]bool{true, false, false}},
	{"ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']", "ec2InstanceId in [i-abcd1234, i-wxyx7890]", [3]bool{true, true, false}},
	{"(attribute:store exists or attribute:region == eu) && !(agentConnected == false)", "(attribute:store exists or attribute:region == eu) and not (agentConnected == false)", [3]bool{true, false, true}},
}

func TestSpecExamples(t *testing.T) {
	for _, tc := range specExamples {
		t.Run(tc.expr, func(t *testing.T) {
			e, err := Parse(tc.expr)
			require.NoError(t, err)
			assert.Equal(t, tc.canonical, e.String())
			got := [3]bool{e.Matches(instA), e.Matches(instB), e.Matches(instC)}
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestSemantics(t *testing.T) {
	in := &Instance{
		ID:                "i-5",
		Attributes:        map[string]string{"zone": "b", "empty": "", "size": "10"},
		AgentConnected:    true,
		AgentVersion:      "1.14.10",
		RegisteredAt:      time.Date(2018, 6, 18, 22, 28, 28, 0, time.UTC),
		RunningTasksCount: 2,
		TaskGroups:        map[string]int{"service:web": 1, "batch": 3, "gone": 0},
	}
	for _, tc := range []struct {
		expr string
		want bool
	}{
		// Absent attributes: only the negative operators hold.
		{"attribute:missing == x", false},
		{"attribute:missing > a", false},
		{"attribute:missing exists", false},
		{"attribute:missing in [x]", false},
		{"attribute:missing =~ '.*'", false},
		{"attribute:missing != x", true},
		{"attribute:missing !exists", true},
		{"attribute:missing not_exists", true},
		{"attribute:missing !in [x]", true},
		{"attribute:missing !~ '.*'", true},
		// Present attributes, strings.
		{"attribute:empty exists", true},
		{"attribute:empty == ''", true},
		{`attribute:empty == ""`, true},
		{"attribute:zone != b", false},
		{"attribute:zone > a", true},
		{"attribute:zone >= b", true},
		{"attribute:zone < b", false},
		{"attribute:size < 9", true}, // strings, not numbers
		{"attribute:zone !in [a, c]", true},
		// Regular expressions match the whole value.
		{"attribute:zone =~ '[a-c]'", true},
		{"attribute:size =~ 1", false},
		{"attribute:size =~ '1.*'", true},
		{"attribute:size !~ '1'", true},
		{"attribute:size =~ '1|x'", false},
		{"attribute:size =~ '(?i)1|10'", true},
		{"attribute:size =~ '1|10'", true}, // the whole value, even where the first alternative matches a prefix
		{`attribute:size =~ '\Q10'`, true},
		{`attribute:size =~ '\Q1)'`, false},
		{`attribute:size =~ '\Q1'`, false},
		// Numbers.
		{"runningTasksCount > 1", true},
		{"runningTasksCount >= 3", false},
		{"runningTasksCount == 02", true},
		{"runningTasksCount in [0, 2]", true},
		{"runningTasksCount !in [0, 2]", false},
		{"runningTasksCount < 10", true},
		// Versions.
		{"agentVersion > 1.14.5", true},
		{"agentVersion < 1.9", false},
		{"agentVersion == 1.14.10.0", true},
		{"agentVersion != 1.14.10", false},
		{"agentVersion <= 1.14.010", true},
		{"agentVersion in [1.14.9, 1.14.10]", true},
		{"agentVersion =~ '1\\.14\\..*'", true},
		{"agentVersion > 99999999999999999999999.0", false},
		// Times, in every format.
		{"registeredAt == 2018-06-18T22:28:28Z", true},
		{"registeredAt == 2018-06-18T22:28:28+00:00", true},
		{"registeredAt == 2018-06-19T00:28:28+02:00", true},
		{"registeredAt == 2018-06-18T22:28:28", true},
		{"registeredAt > 2018-06-18", true},
		{"registeredAt < 2018-06-19", true},
		{"registeredAt >= 2018-06-18T22:28:29Z", false},
		// Task groups: the positive operators need one matching group, the negative ones none.
		{"task:group == batch", true},
		{"task:group == gone", false},
		{"task:group != batch", false},
		{"task:group != database", true},
		{"task:group in [database, service:web]", true},
		{"task:group !in [database, service:web]", false},
		{"task:group =~ 'service:.*'", true},
		{"task:group !~ 'service:.*'", false},
		{"task:group !~ 'gone'", true},
		// Booleans and IDs.
		{"agentConnected == true", true},
		{"agentConnected == FALSE", false},
		{"agentConnected != false", true},
		{"agentConnected in [true]", true},
		{"agentConnected !in [true, false]", false},
		{"instanceId == i-5", true},
		{"ec2InstanceId =~ 'i-[0-9]+'", true},
		{"instanceId > i-4", true},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			e, err := Parse(tc.expr)
			require.NoError(t, err)
			assert.Equal(t, tc.want, e.Matches(in))
		})
	}
}

func TestAbsentTypedSubjects(t *testing.T) {
	// An unreadable agent version or an unknown registration time is absent, like a missing attribute.
	for _, in := range []*Instance{{}, {AgentVersion: "unknown"}, nil} {
		for expr, want := range map[string]bool{
			"agentVersion == 1.0":        false,
			"agentVersion < 99":          false,
			"agentVersion != 1.0":        true,
			"agentVersion !in [1.0]":     true,
			"agentVersion !~ '.*'":       true,
			"registeredAt < 2100-01-01":  false,
			"registeredAt != 2100-01-01": true,
			"attribute:x !exists":        true,
			"task:group != x":            true,
			"task:group =~ '.*'":         false,
			"agentConnected == false":    true,
			"runningTasksCount == 0":     true,
			"instanceId == ''":           true,
			"not (attribute:x == y)":     true,
		} {
			e, err := Parse(expr)
			require.NoError(t, err, expr)
			assert.Equal(t, want, e.Matches(in), "%s on %+v", expr, in)
		}
	}
	for version, want := range map[string]bool{"v1.14.5": true, "1.14.5-rc1": true, "1.14.4+build": false} {
		e, err := Parse("agentVersion >= 1.14.5")
		require.NoError(t, err)
		assert.Equal(t, want, e.Matches(&Instance{AgentVersion: version}), version)
	}
}

// tree renders an expression's structure fully parenthesized.
func tree(e Expr) string {
	list := func(op string, xs []Expr) string {
		parts := []string{op}
		for _, x := range xs {
			parts = append(parts, tree(x))
		}
		return "(" + strings.Join(parts, " ") + ")"
	}
	switch x := e.(type) {
	case orExpr:
		return list("or", x)
	case andExpr:
		return list("and", x)
	case notExpr:
		return "(not " + tree(x.x) + ")"
	case *predicate:
		return strings.TrimPrefix(strings.TrimSuffix(x.String(), " exists"), "attribute:")
	}
	return "?"
}

func TestPrecedence(t *testing.T) {
	expand := strings.NewReplacer("$a", "attribute:a exists", "$b", "attribute:b exists", "$c", "attribute:c exists")
	for _, tc := range []struct{ expr, tree, canonical string }{
		{"$a or $b and $c", "(or a (and b c))", "$a or $b and $c"},
		{"$a and $b or $c", "(or (and a b) c)", "$a and $b or $c"},
		{"$a || $b && $c", "(or a (and b c))", "$a or $b and $c"},
		{"not $a and $b", "(and (not a) b)", "not ($a) and $b"},
		{"!$a || $b", "(or (not a) b)", "not ($a) or $b"},
		{"not ($a or $b)", "(not (or a b))", "not ($a or $b)"},
		{"($a or $b) and $c", "(and (or a b) c)", "($a or $b) and $c"},
		{"$a and ($b or $c) and $a", "(and a (or b c) a)", "$a and ($b or $c) and $a"},
		{"$a and ($b and $c)", "(and a b c)", "$a and $b and $c"},
		{"($a or $b) or ($c or $a)", "(or a b c a)", "$a or $b or $c or $a"},
		{"not not $a", "(not (not a))", "not (not ($a))"},
		{"!!$a", "(not (not a))", "not (not ($a))"},
		{"((($a)))", "a", "$a"},
		{"not($a)and($b)or(not $c)", "(or (and (not a) b) (not c))", "not ($a) and $b or not ($c)"},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			e, err := Parse(expand.Replace(tc.expr))
			require.NoError(t, err)
			assert.Equal(t, tc.tree, tree(e))
			assert.Equal(t, expand.Replace(tc.canonical), e.String())
		})
	}
}

func TestWordsAreCaseInsensitive(t *testing.T) {
	for _, tc := range []struct{ expr, canonical string }{
		{"attribute:a EQUALS x", "attribute:a == x"},
		{"attribute:a Not_Equals x", "attribute:a != x"},
		{"runningTasksCount GREATER_THAN 1", "runningTasksCount > 1"},
		{"runningTasksCount greater_than_EQUAL 1", "runningTasksCount >= 1"},
		{"runningTasksCount Less_Than 1", "runningTasksCount < 1"},
		{"runningTasksCount LESS_THAN_EQUAL 1", "runningTasksCount <= 1"},
		{"attribute:a EXISTS", "attribute:a exists"},
		{"attribute:a !Exists", "attribute:a !exists"},
		{"attribute:a NOT_EXISTS", "attribute:a !exists"},
		{"attribute:a IN [x]", "attribute:a in [x]"},
		{"attribute:a !IN [x]", "attribute:a !in [x]"},
		{"attribute:a Not_In [x]", "attribute:a !in [x]"},
		{"attribute:a MATCHES x", "attribute:a =~ x"},
		{"attribute:a NOT_MATCHES x", "attribute:a !~ x"},
		{"attribute:a exists AND attribute:b exists Or attribute:c exists", "attribute:a exists and attribute:b exists or attribute:c exists"},
		{"NOT attribute:a exists", "not (attribute:a exists)"},
		{"Not(attribute:a exists)", "not (attribute:a exists)"},
		{"agentConnected == True", "agentConnected == True"},
		// Values keep their case; only words that cannot be bare are quoted.
		{"attribute:a==X", "attribute:a == X"},
		{"attribute:a == 'AND'", "attribute:a == 'AND'"},
		{"attribute:a in ['not', \"it's\", 'a b', '']", `attribute:a in ['not', "it's", 'a b', '']`},
		{"attribute:a=~'^x$'", "attribute:a =~ '^x$'"},
		{"attribute:a!exists&&attribute:b!in[x]", "attribute:a !exists and attribute:b !in [x]"},
		{"attribute:é == ü", "attribute:é == ü"},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			e, err := Parse(tc.expr)
			require.NoError(t, err)
			assert.Equal(t, tc.canonical, e.String())
		})
	}
}

func TestLength(t *testing.T) {
	prefix := "attribute:a == "
	e, err := Parse(prefix + strings.Repeat("é", MaxLength-len(prefix))) // characters, not bytes
	require.NoError(t, err)
	assert.Equal(t, MaxLength, utf8.RuneCountInString(e.String()))
}

func TestErrors(t *testing.T) {
	const subjectsMsg = "expected agentConnected, agentVersion, registeredAt, runningTasksCount, ec2InstanceId, " +
		"instanceId, task:group or attribute:NAME"
	for _, tc := range []struct {
		expr string
		col  int
		msg  string
	}{
		// Empty and too long.
		{"", 1, "the expression is empty; expected a predicate such as attribute:ecs.os-type == linux"},
		{" \t ", 1, "the expression is empty; expected a predicate such as attribute:ecs.os-type == linux"},
		{strings.Repeat("a", MaxLength+1), MaxLength + 1, "the expression is 2001 characters long; at most 2000 are allowed"},
		{"attribute:a == \xff", 16, "the expression is not valid UTF-8"},
		// Subjects.
		{"foo == x", 1, `unknown subject "foo"; ` + subjectsMsg},
		{"AgentConnected == true", 1, `unknown subject "AgentConnected"; ` + subjectsMsg + ` (subjects are case-sensitive: "agentConnected")`},
		{"Attribute:x == y", 1, `unknown subject "Attribute:x"; ` + subjectsMsg + ` (subjects are case-sensitive: "attribute:x")`},
		{"attribute: == x", 11, `expected an attribute name after "attribute:"`},
		{"'agentConnected' == true", 1, `expected a subject, "not" or "(", found "'agentConnected'"`},
		{"attribute:a == x and", 21, `expected a subject, "not" or "(" after "and"`},
		{"attribute:a == x and or", 22, `expected a subject, "not" or "(" after "and", found "or"`},
		{"not", 4, `expected a subject, "not" or "(" after "not"`},
		{"()", 2, `expected a subject, "not" or "(" after "(", found ")"`},
		// Operators.
		{"attribute:x", 12, `expected an operator after "attribute:x"`},
		{"attribute:x foo y", 13, `expected an operator after "attribute:x", found "foo"`},
		{"attribute:x 'equals' y", 13, `expected an operator after "attribute:x", found "'equals'"`},
		{"agentConnected > 1", 16, `agentConnected does not support ">"; use ==, !=, in or !in`},
		{"agentConnected =~ x", 16, `agentConnected does not support "=~"; use ==, !=, in or !in`},
		{"agentConnected Greater_Than true", 16, `agentConnected does not support "Greater_Than"; use ==, !=, in or !in`},
		{"runningTasksCount =~ 1", 19, `runningTasksCount does not support "=~"; use ==, !=, in, !in, >, >=, < or <=`},
		{"registeredAt in [2018-01-01]", 14, `registeredAt does not support "in"; use ==, !=, >, >=, < or <=`},
		{"task:group > a", 12, `task:group does not support ">"; use ==, !=, in, !in, =~ or !~`},
		{"instanceId exists", 12, `instanceId does not support "exists"; use ==, !=, in, !in, >, >=, <, <=, =~ or !~`},
		{"attribute:x = y", 13, `unexpected "="; did you mean "=="?`},
		{"attribute:x exists & attribute:y exists", 20, `unexpected "&"; did you mean "&&"?`},
		{"attribute:x exists | attribute:y exists", 20, `unexpected "|"; did you mean "||"?`},
		// Values.
		{"attribute:x ==", 15, `expected a value after "=="`},
		{"attribute:x == ", 16, `expected a value after "=="`},
		{"attribute:x equals )", 20, `expected a value after "equals", found ")"`},
		{"attribute:x == and attribute:y exists", 16, `expected a value after "==", found "and"; write 'and' if that is the value`},
		{"attribute:x == a$b", 17, `unexpected character "$"; put values that contain it in quotes`},
		{"attribute:x exists foo", 20, `"exists" takes no value, found "foo"`},
		{"attribute:x !exists [a]", 21, `"!exists" takes no value, found "["`},
		// A list where one value is expected, and the other way round.
		{"attribute:x == [a, b]", 16, `"==" takes a single value, not a list; use "in" to compare with several values`},
		{"attribute:x != [a]", 16, `"!=" takes a single value, not a list; use "!in" to compare with several values`},
		{"attribute:x > [a]", 15, `">" takes a single value, not a list`},
		{"attribute:x in a", 16, `"in" takes a list such as [a, b], not a single value; write [a]`},
		{"attribute:x not_in 'a b'", 20, `"not_in" takes a list such as [a, b], not a single value; write ['a b']`},
		{"attribute:x in", 15, `expected a list such as [a, b] after "in"`},
		{"attribute:x in []", 17, `expected a value after "[", found "]"`},
		{"attribute:x in [a,]", 19, `expected a value after ",", found "]"`},
		{"attribute:x in [a", 18, `expected "," or "]" to close the "[" at column 16`},
		{"attribute:x in [a b]", 19, `expected "," or "]" after "a", found "b"`},
		{"attribute:x in [a, [b]]", 20, `expected a value after ",", found "["`},
		// Parentheses.
		{"(attribute:x exists", 20, `expected ")" to close the "(" at column 1`},
		{"(attribute:x exists or (attribute:y exists)", 44, `expected ")" to close the "(" at column 1`},
		{"(attribute:x exists c", 21, `"exists" takes no value, found "c"`},
		{"(attribute:x == a c)", 19, `expected "and", "or" or ")" to close the "(" at column 1, found "c"`},
		{"attribute:x exists)", 19, `unbalanced ")": there is no "(" for it to close`},
		{"(attribute:x == y))", 19, `unbalanced ")": there is no "(" for it to close`},
		// Quotes and trailing garbage.
		{"attribute:x == 'abc", 16, `unterminated quoted string; expected a closing '`},
		{`attribute:x in ["abc]`, 17, `unterminated quoted string; expected a closing "`},
		{"attribute:x == a b", 18, `expected "and", "or" or the end of the expression, found "b"`},
		{"attribute:x == 'a' 'b'", 20, `expected "and", "or" or the end of the expression, found "'b'"`},
		{"attribute:x exists not attribute:y exists", 20, `expected "and", "or" or the end of the expression, found "not"`},
		// Typed values and regular expressions.
		{"attribute:x =~ '('", 16, "invalid regular expression: missing closing ): `(`"},
		{"attribute:x matches 'a**'", 21, "invalid regular expression: invalid nested repetition operator: `**`"},
		{"agentVersion =~ '[z-a]'", 17, "invalid regular expression: invalid character class range: `z-a`"},
		{"agentConnected == yes", 19, `invalid value "yes" for agentConnected; expected true or false`},
		{"agentConnected in [true, 1]", 26, `invalid value "1" for agentConnected; expected true or false`},
		{"runningTasksCount > abc", 21, `invalid number "abc" for runningTasksCount; expected a whole number such as 2`},
		{"runningTasksCount > -1", 21, `invalid number "-1" for runningTasksCount; expected a whole number such as 2`},
		{"runningTasksCount > 99999999999999999999", 21, `invalid number "99999999999999999999" for runningTasksCount; expected a whole number such as 2`},
		{"agentVersion < 1.x", 16, `invalid version "1.x" for agentVersion; expected numbers separated by dots, such as 1.14.5`},
		{"agentVersion < 1..2", 16, `invalid version "1..2" for agentVersion; expected numbers separated by dots, such as 1.14.5`},
		{"registeredAt < yesterday", 16, `invalid time "yesterday" for registeredAt; expected 2018-06-18, 2018-06-18T22:28:28, 2018-06-18T22:28:28Z or 2018-06-18T22:28:28+00:00`},
		{"registeredAt < 2018-02-30", 16, `invalid time "2018-02-30" for registeredAt; expected 2018-06-18, 2018-06-18T22:28:28, 2018-06-18T22:28:28Z or 2018-06-18T22:28:28+00:00`},
		// Columns count characters, not bytes.
		{"attribute:é == ü$", 17, `unexpected character "$"; put values that contain it in quotes`},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			e, err := Parse(tc.expr)
			require.Error(t, err, "parsed as %v", e)
			var se *SyntaxError
			require.True(t, errors.As(err, &se), "%T is not a *SyntaxError", err)
			assert.Equal(t, tc.col, se.Column)
			assert.Equal(t, tc.msg, se.Msg)
		})
	}
}

func TestSyntaxErrorMessage(t *testing.T) {
	_, err := Parse("runningTasksCount ==")
	require.Error(t, err)
	assert.Equal(t, `at column 21: expected a value after "=="`, err.Error())
}

// fuzzInstances are evaluated in FuzzParse to check that the canonical form means the same.
var fuzzInstances = []*Instance{instA, instB, instC, nil, {
	ID: "a", Attributes: map[string]string{"a": "a", "b": "", "x": "1"}, AgentVersion: "v2", TaskGroups: map[string]int{"a": 1},
}}

func FuzzParse(f *testing.F) {
	for _, tc := range specExamples {
		f.Add(tc.expr)
	}
	for _, s := range []string{
		"attribute:a == x or attribute:b != 'y' and not (task:group in [a, \"b c\"])",
		"!(!(attribute:a exists)) && (attribute:b =~ '(?i)x.*' || runningTasksCount >= 2)",
		"agentVersion >= 1.14.0 and registeredAt > 2018-06-18T22:28:28+00:00",
		"attribute:a in ['and', \"it's\", ''] or attribute:b !in [x]",
		"(attribute:x exists", "attribute:x == [a]", "attribute:x =~ '('", "attribute:x == 'abc", "a == b c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var (
			e    Expr
			err  error
			done = make(chan struct{})
		)
		go func() {
			defer close(done)
			e, err = Parse(s)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("Parse(%q) did not return", s)
		}
		if err != nil {
			var se *SyntaxError
			require.True(t, errors.As(err, &se), "%T is not a *SyntaxError", err)
			require.NotEmpty(t, se.Msg)
			if utf8.ValidString(s) {
				require.True(t, se.Column >= 1 && se.Column <= utf8.RuneCountInString(s)+1, "column %d of %q", se.Column, s)
			}
			return
		}
		canonical := e.String()
		again, err := Parse(canonical)
		if utf8.RuneCountInString(canonical) > MaxLength {
			// The canonical form can be longer than the input, and then longer than Parse allows.
			again, err = parse(canonical)
		}
		require.NoError(t, err, "canonical form %q of %q", canonical, s)
		require.Equal(t, canonical, again.String(), "input %q", s)
		for _, in := range fuzzInstances {
			require.Equal(t, e.Matches(in), again.Matches(in), "%q and %q on %+v", s, canonical, in)
		}
	})
}
