package journey

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nudge/nudge/policy"
)

func TestGuardrailsParse(t *testing.T) {
	src := head + `priority: 10
policy:
  quiet_hours:
    sms: {allow: "09:00-20:00"}
  on_cap: defer
steps:
  - id: text
    sms: {template: t, purpose: reminder}
    expires: 2h
    deadline: 'timestamp(event.properties.starts_at)'
    on_cap: skip
    policy: {caps: [{channel: sms, limit: 1, per: 3d}]}
  - id: mail
    email: {template: t}
    expires: 'timestamp("2026-03-05T15:00:00Z")'
`
	j, err := Parse("f.yaml", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if j.Priority != 10 || j.Policy == nil || j.Policy.OnCap != policy.OnCapDefer {
		t.Errorf("journey priority %d, policy %+v", j.Priority, j.Policy)
	}
	text := j.Step("text")
	if text.Expires == nil || text.Expires.After != 2*time.Hour || text.Deadline == nil || text.OnCap != OnCapSkip || text.Policy == nil || len(text.Policy.Caps) != 1 {
		t.Errorf("text step: %+v", text)
	}
	if e := j.Step("mail").Expires; e == nil || e.At == nil {
		t.Errorf("mail expires = %+v", e)
	}
	p, err := j.PolicyFor(policy.Default(), text)
	if err != nil {
		t.Fatal(err)
	}
	if p.OnCap != policy.OnCapDefer || len(p.Caps) != len(policy.Default().Caps)+1 {
		t.Errorf("tightened policy: on_cap %s, %d caps", p.OnCap, len(p.Caps))
	}
	if err := j.CheckPolicy(policy.Default()); err != nil {
		t.Error(err)
	}
}

func TestGuardrailsProblems(t *testing.T) {
	step := "steps:\n  - id: a\n    sms: {template: t, purpose: reminder}\n"
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"priority not a number", head + "priority: high\n" + step, []string{
			`f.yaml:3:11: bad priority "high"; priority is a whole number from -1000 to 1000, higher wins, such as priority: 10`,
		}},
		{"priority out of range", head + "priority: 5000\n" + step, []string{
			`f.yaml:3:11: priority 5000 is out of range; priority is a whole number from -1000 to 1000, higher wins, such as priority: 10`,
		}},
		{"journey policy unknown field", head + "policy:\n  quiet_hours:\n    sms: {allow: \"09:00-20:00\"}\n  on_caps: defer\n" + step, []string{
			`f.yaml:6:3: journey j: policy: unknown field "on_caps" in override; did you mean "on_cap"?`,
		}},
		{"step policy flow", head + step + "    policy: {on_cap: wait}\n", []string{
			`f.yaml:6:22: step "a": policy: on_cap: "wait" is not allowed; write one of: skip, defer`,
		}},
		{"bad expires", head + step + "    expires: 2 hours\n", []string{
			`f.yaml:6:14: step "a": expires: bad duration "2 hours"; write 2h`,
		}},
		{"expires not a timestamp", head + step + "    expires: 'contact.email'\n", []string{
			`f.yaml:6:15: step "a": expires (a duration such as 2h, or a CEL timestamp) must be a timestamp, but ` + "`contact.email`" + ` is a string; write a timestamp, such as timestamp(event.properties.starts_at) - duration("1h")`,
		}},
		{"on_cap", head + step + "    on_cap: later\n", []string{
			`f.yaml:6:13: step "a": on_cap "later"; write one of: skip, defer`,
		}},
		{"expires on a wait", head + "steps:\n  - id: a\n    wait: {for: 1d}\n    expires: 2h\n", []string{
			`f.yaml:6:5: step "a" is a wait step: expires applies only to email and sms steps; remove it or move it to the step that sends`,
		}},
		{"empty policy", head + step + "    policy:\n", []string{
			`f.yaml:6:5: step "a": policy is empty; write what it tightens, such as policy: {on_cap: defer} or remove it`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tt.src), Options{})
			var got []string
			var ve *ValidationError
			if errors.As(err, &ve) {
				for _, p := range ve.Problems {
					got = append(got, p.String())
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckPolicyLoosens(t *testing.T) {
	src := head + "steps:\n  - id: a\n    sms: {template: t, purpose: reminder}\n    policy:\n      caps: [{channel: sms, limit: 5, per: 24h}]\n"
	j, err := Parse("f.yaml", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = j.CheckPolicy(policy.Default())
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0].Line != 7 {
		t.Fatalf("CheckPolicy = %v, want one problem at line 7", err)
	}
}
