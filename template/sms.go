package template

import (
	"fmt"
	"strings"
	"unicode/utf16"
)

// SMS character sets.
const (
	GSM7 = "GSM-7"
	UCS2 = "UCS-2"
)

// Segment sizes, in GSM-7 septets or UTF-16 code units. A message that does
// not fit one segment is sent in parts, each of which loses room to the
// concatenation header (UDH).
const (
	gsmSingle  = 160
	gsmPart    = 153
	ucs2Single = 70
	ucs2Part   = 67
)

// gsmBasic is the GSM 03.38 default alphabet (ESC, 0x1B, excluded: it is the
// escape to the extension table, not a character a message can hold).
const gsmBasic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
	"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"

// gsmExtension is the GSM 03.38 extension table: each of these is sent as
// ESC plus a septet, so it counts as two.
const gsmExtension = "\f^{}\\[~]|€"

var gsmWidth = func() map[rune]int {
	m := make(map[rune]int, 140)
	for _, r := range gsmBasic {
		m[r] = 1
	}
	for _, r := range gsmExtension {
		m[r] = 2
	}
	return m
}()

// Encoding is how an SMS text goes over the air.
type Encoding struct {
	Charset string // GSM7 or UCS2
	// Characters counts what a segment holds: septets for GSM-7 (an
	// extension character counts 2), UTF-16 code units for UCS-2 (an emoji
	// outside the BMP counts 2).
	Characters int
	Segments   int // 0 for an empty text
	// NotGSM is the first character that made the text UCS-2, 0 for GSM-7.
	// One typographic quote (’) or emoji doubles or triples a message's cost.
	NotGSM rune
}

// Segments tells how text is encoded and into how many segments it is split.
// A character is never split across two segments: a GSM-7 extension
// character (2 septets) or a UTF-16 surrogate pair that does not fit in what
// is left of a segment starts the next one, as handsets and gateways do.
func Segments(text string) Encoding {
	e := Encoding{Charset: GSM7}
	for _, r := range text {
		if gsmWidth[r] == 0 {
			e.Charset, e.NotGSM = UCS2, r
			break
		}
	}
	widths := make([]int, 0, len(text))
	for _, r := range text {
		w := gsmWidth[r]
		if e.Charset == UCS2 {
			w = utf16.RuneLen(r)
			if w < 0 { // invalid rune: sent as U+FFFD
				w = 1
			}
		}
		widths = append(widths, w)
		e.Characters += w
	}
	single, part := gsmSingle, gsmPart
	if e.Charset == UCS2 {
		single, part = ucs2Single, ucs2Part
	}
	switch {
	case e.Characters == 0:
		e.Segments = 0
	case e.Characters <= single:
		e.Segments = 1
	default:
		e.Segments = 1
		used := 0
		for _, w := range widths {
			if used+w > part {
				e.Segments++
				used = 0
			}
			used += w
		}
	}
	return e
}

// SMSLimits configure LintSMS. Zero fields take the defaults.
type SMSLimits struct {
	// WarnSegments: more segments than this is a warning. Default 2.
	WarnSegments int
	// MaxSegments: more segments than this is an error. Default 10 (about
	// Twilio's 1,600-character body limit).
	MaxSegments int
	// MaxCharacters: a longer body is an error. Default 1,600 (Twilio's Body
	// limit, counted in Unicode characters).
	MaxCharacters int
	// PricePerSegment, in the account's currency, for the cost estimate.
	PricePerSegment float64
	// OptOutNotice, when set, is the notice the policy adds to marketing
	// texts ("Reply STOP to opt out"): the lint counts the text with it
	// (WithOptOutNotice), the longest the text will be.
	OptOutNotice string
}

// WithOptOutNotice returns text with the opt-out notice appended: after a
// space, or on a line of its own when the text has several lines. A text
// that already contains the notice (in any case), and an empty notice,
// leave text as it is.
func WithOptOutNotice(text, notice string) string {
	notice = strings.TrimSpace(notice)
	if notice == "" || strings.Contains(strings.ToLower(text), strings.ToLower(notice)) {
		return text
	}
	text = strings.TrimRight(text, " \t\r\n")
	switch {
	case text == "":
		return notice
	case strings.Contains(text, "\n"):
		return text + "\n" + notice
	}
	return text + " " + notice
}

func (l SMSLimits) withDefaults() SMSLimits {
	if l.WarnSegments <= 0 {
		l.WarnSegments = 2
	}
	if l.MaxSegments <= 0 {
		l.MaxSegments = 10
	}
	if l.MaxCharacters <= 0 {
		l.MaxCharacters = 1600
	}
	return l
}

// SMSLint is what LintSMS found in one SMS text.
type SMSLint struct {
	Encoding
	Cost     float64  // Segments × PricePerSegment, per send
	Warnings []string // the text can be sent, but costs more than it should
	Errors   []string // the text must not be sent
}

// Err returns the lint's errors as one EINVALID-style error, or nil.
func (l *SMSLint) Err() error {
	if len(l.Errors) == 0 {
		return nil
	}
	return fmt.Errorf("sms: %s", strings.Join(l.Errors, "; "))
}

// LintSMS checks an SMS text (rendered, or rendered with the longest
// plausible personalization) against the limits.
func LintSMS(text string, limits SMSLimits) *SMSLint {
	limits = limits.withDefaults()
	if strings.TrimSpace(text) != "" {
		text = WithOptOutNotice(text, limits.OptOutNotice)
	}
	l := &SMSLint{Encoding: Segments(text)}
	l.Cost = float64(l.Segments) * limits.PricePerSegment
	if strings.TrimSpace(text) == "" {
		l.Errors = append(l.Errors, "the text is empty")
		return l
	}
	if n := len([]rune(text)); n > limits.MaxCharacters {
		l.Errors = append(l.Errors, fmt.Sprintf("%d characters is more than the %d a provider accepts", n, limits.MaxCharacters))
	}
	if l.Segments > limits.MaxSegments {
		l.Errors = append(l.Errors, fmt.Sprintf("%d segments (%s, %d characters) is more than the maximum of %d", l.Segments, l.Charset, l.Characters, limits.MaxSegments))
	} else if l.Segments > limits.WarnSegments {
		l.Warnings = append(l.Warnings, fmt.Sprintf("%d segments (%s, %d characters): each send is billed %d times", l.Segments, l.Charset, l.Characters, l.Segments))
	}
	if l.Charset == UCS2 && l.Segments > 1 {
		l.Warnings = append(l.Warnings, fmt.Sprintf("%q (U+%04X) makes the whole message UCS-2 (%d characters per segment instead of %d)", l.NotGSM, l.NotGSM, ucs2Part, gsmPart))
	}
	return l
}
