package query

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// MaxLength is the longest expression Parse accepts, in characters, as the ECS API and Drover's CRDs allow.
const MaxLength = 2000

// SyntaxError is why Parse refused an expression.
type SyntaxError struct {
	// Column is the 1-based position, in characters, of the offending token; one past the last character
	// when the expression ended too soon.
	Column int
	// Msg says what was wrong and what was expected.
	Msg string
}

// Error returns, for example, `at column 22: expected a value after "=="`.
func (e *SyntaxError) Error() string { return fmt.Sprintf("at column %d: %s", e.Column, e.Msg) }

func errorf(col int, format string, args ...any) *SyntaxError {
	return &SyntaxError{Column: col, Msg: fmt.Sprintf(format, args...)}
}

// Parse parses a cluster query language expression. Its errors are *SyntaxError.
func Parse(s string) (Expr, error) {
	if !utf8.ValidString(s) {
		return nil, errorf(utf8.RuneCountInString(s[:invalidUTF8(s)])+1, "the expression is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > MaxLength {
		return nil, errorf(MaxLength+1, "the expression is %d characters long; at most %d are allowed", n, MaxLength)
	}
	return parse(s)
}

// invalidUTF8 returns the byte offset of the first invalid UTF-8 sequence in s.
func invalidUTF8(s string) int {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return i
			}
		}
	}
	return len(s)
}

// parse parses an expression of any length.
func parse(s string) (Expr, error) {
	p := &parser{lx: lexer{src: []rune(s)}}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind == tokEOF {
		return nil, errorf(1, "the expression is empty; expected a predicate such as attribute:ecs.os-type == linux")
	}
	x, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	switch p.tok.kind {
	case tokEOF:
		return x, nil
	case tokRParen:
		return nil, errorf(p.tok.col, `unbalanced ")": there is no "(" for it to close`)
	}
	return nil, p.expected(`"and", "or" or the end of the expression`, false)
}

// parser is a recursive-descent parser with one token of lookahead; its methods follow the grammar.
type parser struct {
	lx   lexer
	tok  token // the current token
	prev token // the token before it
}

func (p *parser) advance() error {
	t, err := p.lx.next()
	if err != nil {
		return err
	}
	p.prev, p.tok = p.tok, t
	return nil
}

// expected reports that the current token is not what the grammar needs at this point, optionally
// naming the token after which it was needed.
func (p *parser) expected(what string, after bool) error {
	msg := "expected " + what
	if after && p.prev.col > 0 {
		msg += " after " + p.prev.String()
	}
	if p.tok.kind != tokEOF {
		msg += ", found " + p.tok.String()
	}
	return errorf(p.tok.col, "%s", msg)
}

// is reports whether the current token is the symbol sym or, in any case, the word word.
func (p *parser) is(sym, word string) bool {
	return (p.tok.kind == tokOp && p.tok.text == sym) || (p.tok.kind == tokWord && keyword(p.tok.text) == word)
}

// or = and { ("||" | "or") and }
func (p *parser) parseOr() (Expr, error) {
	var xs orExpr
	for {
		x, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		if y, ok := x.(orExpr); ok {
			xs = append(xs, y...)
		} else {
			xs = append(xs, x)
		}
		if !p.is("||", "or") {
			break
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
	}
	if len(xs) == 1 {
		return xs[0], nil
	}
	return xs, nil
}

// and = unary { ("&&" | "and") unary }
func (p *parser) parseAnd() (Expr, error) {
	var xs andExpr
	for {
		x, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		if y, ok := x.(andExpr); ok {
			xs = append(xs, y...)
		} else {
			xs = append(xs, x)
		}
		if !p.is("&&", "and") {
			break
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
	}
	if len(xs) == 1 {
		return xs[0], nil
	}
	return xs, nil
}

// unary = ("!" | "not") unary | "(" expr ")" | predicate
func (p *parser) parseUnary() (Expr, error) {
	switch {
	case p.is("!", "not"):
		if err := p.advance(); err != nil {
			return nil, err
		}
		x, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		return notExpr{x}, nil
	case p.tok.kind == tokLParen:
		open := p.tok.col
		if err := p.advance(); err != nil {
			return nil, err
		}
		x, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if p.tok.kind == tokEOF {
			return nil, errorf(p.tok.col, `expected ")" to close the "(" at column %d`, open)
		}
		if p.tok.kind != tokRParen {
			return nil, p.expected(fmt.Sprintf(`"and", "or" or ")" to close the "(" at column %d`, open), false)
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
		return x, nil
	}
	return p.parsePredicate()
}

// predicate = subject operator [argument]
func (p *parser) parsePredicate() (Expr, error) {
	if p.tok.kind != tokWord || isLogical(p.tok) {
		return nil, p.expected(`a subject, "not" or "("`, true)
	}
	pr, err := newPredicate(p.tok)
	if err != nil {
		return nil, err
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	opTok := p.tok
	o, ok := op(0), false
	if opTok.kind == tokWord || opTok.kind == tokOp {
		o, ok = ops[keyword(opTok.text)]
	}
	if !ok {
		return nil, p.expected("an operator", true)
	}
	spec := subjectSpecs[pr.kind]
	if !spec.supports(o) {
		return nil, errorf(opTok.col, "%s does not support %s; use %s", pr.subject, opTok, spec.opList())
	}
	pr.op = o
	if err := p.advance(); err != nil {
		return nil, err
	}
	switch o.arity() {
	case arityNone:
		if (p.tok.isValue() && !isLogical(p.tok)) || p.tok.kind == tokLBracket {
			return nil, errorf(p.tok.col, "%s takes no value, found %s", opTok, p.tok)
		}
	case arityOne:
		if p.tok.kind == tokLBracket {
			hint := ""
			switch o {
			case opEq:
				hint = `; use "in" to compare with several values`
			case opNe:
				hint = `; use "!in" to compare with several values`
			}
			return nil, errorf(p.tok.col, "%s takes a single value, not a list%s", opTok, hint)
		}
		if err := p.parseValue(pr); err != nil {
			return nil, err
		}
	case arityList:
		if p.tok.isValue() && !isLogical(p.tok) {
			return nil, errorf(p.tok.col, "%s takes a list such as [a, b], not a single value; write [%s]",
				opTok, quote(p.tok.text))
		}
		if err := p.parseList(pr); err != nil {
			return nil, err
		}
	}
	return pr, nil
}

// parseList parses "[" value { "," value } "]".
func (p *parser) parseList(pr *predicate) error {
	if p.tok.kind != tokLBracket {
		return p.expected("a list such as [a, b]", true)
	}
	open := p.tok.col
	for {
		if err := p.advance(); err != nil {
			return err
		}
		if err := p.parseValue(pr); err != nil {
			return err
		}
		switch p.tok.kind {
		case tokComma:
			continue
		case tokRBracket:
			return p.advance()
		case tokEOF:
			return errorf(p.tok.col, `expected "," or "]" to close the "[" at column %d`, open)
		}
		return p.expected(`"," or "]"`, true)
	}
}

// parseValue parses a value, checks it against the predicate's subject and operator, and appends it.
func (p *parser) parseValue(pr *predicate) error {
	if !p.tok.isValue() {
		return p.expected("a value", true)
	}
	if isLogical(p.tok) {
		return errorf(p.tok.col, "expected a value after %s, found %s; write %s if that is the value",
			p.prev, p.tok, quote(p.tok.text))
	}
	if problem := pr.addArg(p.tok.text); problem != "" {
		return errorf(p.tok.col, "%s", problem)
	}
	return p.advance()
}

// isLogical reports whether t is the bare word and, or or not, in any case. These words are never read as
// values, so that a forgotten value ("attribute:x == and ...") is reported where it is missing.
func isLogical(t token) bool {
	if t.kind != tokWord {
		return false
	}
	k := keyword(t.text)
	return k == "and" || k == "or" || k == "not"
}

// newPredicate starts a predicate from its subject.
func newPredicate(t token) (*predicate, error) {
	if kind, ok := subjects[t.text]; ok {
		return &predicate{subject: t.text, kind: kind}, nil
	}
	if name, ok := strings.CutPrefix(t.text, attributePrefix); ok {
		if name == "" {
			return nil, errorf(t.col+len(attributePrefix), `expected an attribute name after "attribute:"`)
		}
		return &predicate{subject: t.text, kind: subjAttribute, attr: name}, nil
	}
	msg := fmt.Sprintf("unknown subject %s; expected %s", t, subjectList)
	for name := range subjects {
		if strings.EqualFold(name, t.text) {
			msg += fmt.Sprintf(" (subjects are case-sensitive: %q)", name)
		}
	}
	if len(t.text) > len(attributePrefix) && strings.EqualFold(t.text[:len(attributePrefix)], attributePrefix) {
		msg += fmt.Sprintf(" (subjects are case-sensitive: %q)", attributePrefix+t.text[len(attributePrefix):])
	}
	return nil, errorf(t.col, "%s", msg)
}

// addArg checks a value and appends it to the predicate's arguments; it returns what is wrong with the
// value, or "".
func (pr *predicate) addArg(text string) string {
	if pr.op == opMatch || pr.op == opNotMatch {
		re, err := regexp.Compile(text)
		if err != nil {
			return "invalid regular expression: " + strings.TrimPrefix(err.Error(), "error parsing regexp: ")
		}
		// Rather than wrapping the pattern in \A(?:...)\z, which \Q (quote to the end) would defeat, prefer the
		// longest match: it spans the whole value whenever some match does (see matchesWhole).
		re.Longest()
		pr.re = re
		pr.args = append(pr.args, operand{text: text})
		return ""
	}
	a, ok := parseOperand(subjectSpecs[pr.kind].value, text)
	if !ok {
		return invalidValue(pr.subject, subjectSpecs[pr.kind].value, text)
	}
	pr.args = append(pr.args, a)
	return ""
}

// invalidValue says why text is not a value of type t.
func invalidValue(subject string, t valueType, text string) string {
	switch t {
	case valBool:
		return fmt.Sprintf("invalid value %q for %s; expected true or false", text, subject)
	case valNumber:
		return fmt.Sprintf("invalid number %q for %s; expected a whole number such as 2", text, subject)
	case valVersion:
		return fmt.Sprintf("invalid version %q for %s; expected numbers separated by dots, such as 1.14.5",
			text, subject)
	case valTime:
		return fmt.Sprintf("invalid time %q for %s; expected 2018-06-18, 2018-06-18T22:28:28, "+
			"2018-06-18T22:28:28Z or 2018-06-18T22:28:28+00:00", text, subject)
	}
	return fmt.Sprintf("invalid value %q for %s", text, subject)
}
