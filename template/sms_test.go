package template

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSegments(t *testing.T) {
	a := func(n int) string { return strings.Repeat("a", n) }
	e := func(n int) string { return strings.Repeat("é", n) } // GSM-7 basic, 2 bytes in UTF-8
	u := func(n int) string { return strings.Repeat("ж", n) } // not GSM-7
	tests := []struct {
		name     string
		text     string
		charset  string
		chars    int
		segments int
	}{
		{"empty", "", GSM7, 0, 0},
		{"one char", "a", GSM7, 1, 1},
		{"160 gsm", a(160), GSM7, 160, 1},
		{"161 gsm", a(161), GSM7, 161, 2},
		{"306 gsm", a(306), GSM7, 306, 2},
		{"307 gsm", a(307), GSM7, 307, 3},
		{"459 gsm", a(459), GSM7, 459, 3},
		{"460 gsm", a(460), GSM7, 460, 4},
		{"gsm accents count 1", e(160), GSM7, 160, 1},
		{"extension counts 2", "{}", GSM7, 4, 1},
		{"euro and form feed count 2", "€\f", GSM7, 4, 1},
		{"159 plus extension", a(159) + "€", GSM7, 161, 2},
		{"158 plus extension", a(158) + "€", GSM7, 160, 1},
		// 152 + 2 + 152 = 306 septets would fit two parts, but the euro
		// sign cannot straddle the boundary: it moves to part two.
		{"extension at the 153 boundary", a(152) + "€" + a(152), GSM7, 306, 3},
		{"extension before the boundary", a(151) + "€" + a(153), GSM7, 306, 2},
		{"70 ucs2", u(70), UCS2, 70, 1},
		{"71 ucs2", u(71), UCS2, 71, 2},
		{"134 ucs2", u(134), UCS2, 134, 2},
		{"135 ucs2", u(135), UCS2, 135, 3},
		{"one non-gsm char makes all ucs2", a(100) + "’", UCS2, 101, 2},
		{"emoji counts 2", "Hi 👋", UCS2, 5, 1},
		{"69 plus emoji", u(69) + "👋", UCS2, 71, 2},
		{"68 plus emoji", u(68) + "👋", UCS2, 70, 1},
		{"emoji at the 67 boundary", u(66) + "👋" + u(66), UCS2, 134, 3},
		{"extension in ucs2 counts 1", "€ж", UCS2, 2, 1},
		{"10000 gsm", a(10000), GSM7, 10000, 66},
		{"10000 ucs2", u(10000), UCS2, 10000, 150},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Segments(tt.text)
			if got.Charset != tt.charset || got.Characters != tt.chars || got.Segments != tt.segments {
				t.Errorf("Segments = %s %d chars %d segments, want %s %d chars %d segments",
					got.Charset, got.Characters, got.Segments, tt.charset, tt.chars, tt.segments)
			}
		})
	}
}

func TestLintSMS(t *testing.T) {
	limits := SMSLimits{MaxSegments: 4, PricePerSegment: 0.0079}
	tests := []struct {
		name     string
		text     string
		segments int
		warnings int
		errors   int
	}{
		{"short", "Your code is 1234", 1, 0, 0},
		{"two segments is fine", strings.Repeat("a", 306), 2, 0, 0},
		{"three segments warns", strings.Repeat("a", 307), 3, 1, 0},
		{"ucs2 over one segment warns why", strings.Repeat("a", 70) + "’", 2, 1, 0},
		{"above the maximum", strings.Repeat("a", 613), 5, 0, 1},
		{"empty", "  ", 1, 0, 1},
		{"10000 characters", strings.Repeat("a", 10000), 66, 0, 2},
		{"emoji above the maximum", strings.Repeat("🎉", 150), 5, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := LintSMS(tt.text, limits)
			if l.Segments != tt.segments || len(l.Warnings) != tt.warnings || len(l.Errors) != tt.errors {
				t.Fatalf("LintSMS = %d segments, warnings %q, errors %q; want %d, %d, %d",
					l.Segments, l.Warnings, l.Errors, tt.segments, tt.warnings, tt.errors)
			}
			if want := float64(tt.segments) * 0.0079; l.Cost != want {
				t.Errorf("Cost = %v, want %v", l.Cost, want)
			}
			if (l.Err() != nil) != (tt.errors > 0) {
				t.Errorf("Err() = %v with %d errors", l.Err(), tt.errors)
			}
		})
	}
}

func TestWithOptOutNotice(t *testing.T) {
	const notice = "Reply STOP to opt out"
	for _, tc := range []struct{ text, want string }{
		{"Starts in 1 hour.", "Starts in 1 hour. Reply STOP to opt out"},
		{"Starts in 1 hour.\n", "Starts in 1 hour. Reply STOP to opt out"},
		{"Hi Ada,\nstarts in 1 hour.", "Hi Ada,\nstarts in 1 hour.\nReply STOP to opt out"},
		{"Starts soon. reply stop to opt out.", "Starts soon. reply stop to opt out."}, // carries it already
	} {
		if got := WithOptOutNotice(tc.text, notice); got != tc.want {
			t.Errorf("WithOptOutNotice(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
	if got := WithOptOutNotice("Hi", ""); got != "Hi" {
		t.Errorf("no notice: %q", got)
	}
	// The lint counts the text as it will go: 150 characters fit one
	// segment, and two with the notice.
	text := strings.Repeat("a", 150)
	if l := LintSMS(text, SMSLimits{}); l.Segments != 1 {
		t.Errorf("without the notice: %d segments, want 1", l.Segments)
	}
	if l := LintSMS(text, SMSLimits{OptOutNotice: notice}); l.Segments != 2 {
		t.Errorf("with the notice: %d segments, want 2", l.Segments)
	}
}

func FuzzSegments(f *testing.F) {
	for _, s := range []string{"", "a", "€", "👋", strings.Repeat("a", 152) + "€", "\xff\xfe", "ж{"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := Segments(s)
		if s != "" && e.Segments < 1 {
			t.Fatalf("Segments(%q) = %d segments", s, e.Segments)
		}
		if n := utf8.RuneCountInString(s); e.Characters < n || e.Characters > 2*n {
			t.Fatalf("Segments(%q) = %d characters for %d runes", s, e.Characters, n)
		}
		single, part := gsmSingle, gsmPart
		if e.Charset == UCS2 {
			single, part = ucs2Single, ucs2Part
		}
		if e.Segments > 1 && (e.Characters <= single || e.Segments*part < e.Characters) {
			t.Fatalf("Segments(%q) = %d segments for %d %s characters", s, e.Segments, e.Characters, e.Charset)
		}
		LintSMS(s, SMSLimits{})
	})
}
