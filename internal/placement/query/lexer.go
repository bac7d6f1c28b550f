package query

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// tokenKind classifies a token.
type tokenKind int

const (
	tokEOF      tokenKind = iota
	tokWord               // a bare word: subject, word operator, keyword or value
	tokString             // a quoted value
	tokOp                 // ==, !=, >, >=, <, <=, =~, !~, !exists, !in, &&, || or !
	tokLParen             // (
	tokRParen             // )
	tokLBracket           // [
	tokRBracket           // ]
	tokComma              // ,
)

// token is one lexical element of an expression.
type token struct {
	kind tokenKind
	text string // the token as written, without the quotes of a quoted value
	raw  string // the token as written
	col  int    // 1-based column of its first character
}

// String describes the token for error messages.
func (t token) String() string {
	if t.kind == tokEOF {
		return "the end of the expression"
	}
	const max = 40
	raw := t.raw
	if r := []rune(raw); len(r) > max {
		raw = string(r[:max]) + "..."
	}
	return fmt.Sprintf("%q", raw)
}

// isValue reports whether the token can be a value.
func (t token) isValue() bool { return t.kind == tokWord || t.kind == tokString }

// lexer splits an expression into tokens on demand, so that the parser reports the leftmost error.
type lexer struct {
	src []rune
	pos int
}

// next returns the next token, or a *SyntaxError for a character that cannot start one.
func (l *lexer) next() (token, error) {
	for l.pos < len(l.src) && unicode.IsSpace(l.src[l.pos]) {
		l.pos++
	}
	start := l.pos
	if start == len(l.src) {
		return token{kind: tokEOF, col: start + 1}, nil
	}
	c := l.src[start]
	if isWordRune(c) {
		for l.pos < len(l.src) && isWordRune(l.src[l.pos]) {
			l.pos++
		}
		return l.emit(tokWord, start), nil
	}
	l.pos++
	switch c {
	case '\'', '"':
		end := l.pos
		for end < len(l.src) && l.src[end] != c {
			end++
		}
		if end == len(l.src) {
			return token{}, errorf(start+1, "unterminated quoted string; expected a closing %c", c)
		}
		l.pos = end + 1
		t := l.emit(tokString, start)
		t.text = string(l.src[start+1 : end])
		return t, nil
	case '(':
		return l.emit(tokLParen, start), nil
	case ')':
		return l.emit(tokRParen, start), nil
	case '[':
		return l.emit(tokLBracket, start), nil
	case ']':
		return l.emit(tokRBracket, start), nil
	case ',':
		return l.emit(tokComma, start), nil
	case '=':
		if l.accept('=') || l.accept('~') {
			return l.emit(tokOp, start), nil
		}
		return token{}, errorf(start+1, `unexpected "="; did you mean "=="?`)
	case '!':
		// "!=", "!~", "!exists" and "!in" are operators of their own; a "!" alone is a negation.
		_ = l.accept('=') || l.accept('~') || l.acceptWord("exists") || l.acceptWord("in")
		return l.emit(tokOp, start), nil
	case '<', '>':
		l.accept('=')
		return l.emit(tokOp, start), nil
	case '&', '|':
		if l.accept(c) {
			return l.emit(tokOp, start), nil
		}
		return token{}, errorf(start+1, "unexpected %q; did you mean %q?", string(c), string([]rune{c, c}))
	}
	return token{}, errorf(start+1, "unexpected character %q; put values that contain it in quotes", string(c))
}

// accept consumes r if it comes next.
func (l *lexer) accept(r rune) bool {
	if l.pos < len(l.src) && l.src[l.pos] == r {
		l.pos++
		return true
	}
	return false
}

// acceptWord consumes the next word if it is the keyword w, in any case.
func (l *lexer) acceptWord(w string) bool {
	end := l.pos
	for end < len(l.src) && isWordRune(l.src[end]) {
		end++
	}
	if keyword(string(l.src[l.pos:end])) != w {
		return false
	}
	l.pos = end
	return true
}

func (l *lexer) emit(kind tokenKind, start int) token {
	s := string(l.src[start:l.pos])
	return token{kind: kind, text: s, raw: s, col: start + 1}
}

// isWordRune reports whether r can be part of a bare word: letters, digits and . - _ : / * ? +.
func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune(".-_:/*?+", r)
}

// isBareWord reports whether s can be written as a bare word.
func isBareWord(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !isWordRune(r) {
			return false
		}
	}
	return true
}

// keyword returns s in lower case for comparison with keywords and word operators, which are
// case-insensitive; it returns "" for words with non-ASCII letters, which are never keywords.
func keyword(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return ""
		}
	}
	return strings.ToLower(s)
}
