// Package query parses and evaluates the ECS cluster query language: the expressions of memberOf placement
// constraints, such as
//
//	attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d
//
// The grammar and meaning are those of shared/design/QUERY-LANGUAGE.md. Parse turns an expression into an
// Expr, or a *SyntaxError that gives the 1-based column (in characters) of the offending token and says what
// was expected; an Expr is immutable and safe for concurrent use.
//
// Where the specification is silent, the package decides as follows.
//
//   - Operators per subject. agentConnected: ==, !=, in, !in (with true or false, any case).
//     agentVersion: ==, !=, >, >=, <, <=, in, !in, =~, !~. registeredAt: ==, !=, >, >=, <, <=.
//     runningTasksCount: ==, !=, >, >=, <, <=, in, !in. ec2InstanceId and instanceId: all but exists and
//     !exists (an instance always has an ID). task:group: ==, !=, in, !in, =~, !~. attribute:NAME: all.
//     Regular expressions are refused on runningTasksCount and registeredAt, whose values are numbers and
//     times rather than text; exists and !exists only apply to attributes, the one subject that can be absent.
//   - Typed subjects compare by value for every operator, == and in included: runningTasksCount as a whole
//     number (digits only), agentVersion as dotted numbers where missing parts count as 0 (1.14 == 1.14.0,
//     1.14.5 < 1.14.10), registeredAt as an instant (a time without a zone, or a date alone, is UTC; a date
//     alone is its midnight). Values are checked when the expression is parsed.
//   - An instance's agentVersion is read leniently (a leading "v" and a suffix such as "-rc1" are ignored);
//     when it is empty or still unreadable, and when registeredAt is the zero time, the subject counts as
//     absent like a missing attribute: every comparison is false except !=, !in and !~, which are true.
//   - task:group: ==, in and =~ hold when at least one group with a task on the instance matches; !=, !in and
//     !~ are their negations (no group matches). Groups with a count of zero are ignored.
//   - Regular expressions are Go RE2 syntax and must match the whole value; they are compiled once by Parse.
//   - Quoted values have no escape sequences: a value runs to the next quote of the same kind, so 'a"b' and
//     "it's" are both fine. An empty quoted value is allowed. A bare value can be any word except and,
//     or and not, so that a forgotten value is reported where it is missing; quote those ('and').
//   - Letters and digits in bare words are Unicode letters and digits; the expression must be valid UTF-8
//     and at most MaxLength characters long.
//   - Expr.String renders a canonical form: symbol operators (==, !in, =~), the words and, or and
//     not (...), parentheses only where precedence needs them, and values bare when they are bare words,
//     quoted otherwise. Parsing the canonical form gives the same expression again.
package query
