package registration

import (
	"regexp"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestNameBase(t *testing.T) {
	for _, tc := range []struct{ hostname, want string }{
		{"store-042", "store-042"},
		{"Store-042.example.com", "store-042"},
		{"  web_01  ", "web-01"},
		{"--a--b--", "a-b"},
		{"_", "instance"},
		{"", "instance"},
		{".example.com", "instance"},
		{"héllo wörld", "h-llo-w-rld"},
		{strings.Repeat("a", 100), strings.Repeat("a", maxNameBase)},
		{strings.Repeat("a", maxNameBase-1) + "-b", strings.Repeat("a", maxNameBase-1)},
	} {
		if got := nameBase(tc.hostname); got != tc.want {
			t.Errorf("nameBase(%q) = %q, want %q", tc.hostname, got, tc.want)
		}
	}
}

func TestInstanceName(t *testing.T) {
	suffix := regexp.MustCompile(`^store-042-[0-9a-f]{6}$`)
	a, b := instanceName("store-042.example.com"), instanceName("store-042.example.com")
	if !suffix.MatchString(a) || a == b {
		t.Fatalf("instanceName gave %q and %q, want store-042-<6 random hex digits>", a, b)
	}
	for _, h := range []string{strings.Repeat("x", 300), "!!!", "a.b.c", "9lives"} {
		if errs := validation.IsDNS1123Label(instanceName(h)); len(errs) > 0 {
			t.Errorf("instanceName(%q) = %q is not a DNS label: %v", h, instanceName(h), errs)
		}
	}
}
