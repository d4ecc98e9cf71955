package journey

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nudge/nudge"
)

// head is a valid journey start; cases append steps or replace parts.
const head = "id: j\ntrigger: {event: a}\n"

func TestProblems(t *testing.T) {
	templates := func(channel, name string) bool { return name != "missing" }
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"unknown field", "id: j\ntirgger: {event: a}\nsteps: [{id: a, email: {template: t}}]\n", []string{
			`f.yaml:1:1: trigger is missing; write trigger: {event: NAME}, trigger: {attribute: CONDITION} or trigger: {date: {field: NAME, offset: -7d}}`,
			`f.yaml:2:1: unknown field "tirgger" in the journey; did you mean "trigger"?`,
		}},
		{"unknown field in step", head + "steps:\n  - id: a\n    emial: {template: t}\n", []string{
			`f.yaml:4:5: step "a" has nothing to do; add one of: email, sms, wait, wait_for, branch, split, update_contact, webhook, exit`,
			`f.yaml:5:5: unknown field "emial" in step 1; did you mean "email"?`,
		}},
		{"unknown step in next", head + "steps:\n  - id: a\n    email: {template: t}\n    next: txt\n  - id: text\n    exit: {}\n", []string{
			`f.yaml:6:11: unknown step "txt" in next; did you mean "text"? the steps are: a, text`,
			`f.yaml:7:5: step "text" is unreachable: no step leads to it; point a next, then, else, on_event, on_timeout or split at it, or remove it`,
		}},
		{"unknown step in then and else", head + "steps:\n  - id: a\n    branch:\n      - if: 'true'\n        then: zz\n      - else: yy\n", []string{
			`f.yaml:7:15: unknown step "zz" in then; the steps are: a`,
			`f.yaml:8:15: unknown step "yy" in else; the steps are: a`,
		}},
		{"unknown step in wait_for", head + "steps:\n  - id: a\n    wait_for: {event: e, timeout: 2d, on_event: b, on_timeout: c}\n  - id: d\n    exit: {}\n", []string{
			`f.yaml:5:49: unknown step "b" in on_event; the steps are: a, d`,
			`f.yaml:5:64: unknown step "c" in on_timeout; the steps are: a, d`,
			`f.yaml:6:5: step "d" is unreachable: no step leads to it; point a next, then, else, on_event, on_timeout or split at it, or remove it`,
		}},
		{"unknown step in split", head + "steps:\n  - id: a\n    split: [{weight: 50, next: b}, {weight: 50}]\n  - id: c\n    exit: {}\n", []string{
			`f.yaml:5:32: unknown step "b" in next; the steps are: a, c`,
		}},
		{"duplicate step id", head + "steps:\n  - id: a\n    email: {template: t}\n  - id: a\n    exit: {}\n", []string{
			`f.yaml:6:9: duplicate step id "a" (the first is at line 4); rename one of them`,
		}},
		{"unreachable step", head + "steps:\n  - id: a\n    exit: {}\n  - id: b\n    email: {template: t}\n", []string{
			`f.yaml:6:5: step "b" is unreachable: no step leads to it; point a next, then, else, on_event, on_timeout or split at it, or remove it`,
		}},
		{"loop without a wait", head + "steps:\n  - id: a\n    email: {template: t}\n  - id: b\n    branch:\n      - if: 'true'\n        then: a\n      - else: c\n  - id: c\n    exit: {}\n", []string{
			`f.yaml:4:5: loop without a wait: a → b → a; a contact would go round it at once, without end: add a wait step to the loop`,
		}},
		{"loop with a wait is fine", head + "steps:\n  - id: a\n    email: {template: t}\n  - id: w\n    wait: {for: 1d}\n    next: a\n", nil},
		{"CEL syntax error", "id: j\ntrigger: {event: a, filter: 'event.name ==' }\nsteps: [{id: a, exit: {}}]\n", []string{
			`f.yaml:2:43: filter: CEL syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}`,
		}},
		{"CEL type error", head + "entry: 'contact.lifecycle_stage == 5'\nsteps: [{id: a, exit: {}}]\n", []string{
			`f.yaml:3:33: entry: CEL type error: found no matching overload for '_==_' applied to '(string, int)'; both sides of a comparison must have the same type (quote text, leave numbers bare)`,
		}},
		{"CEL undefined field", head + "steps:\n  - id: a\n    wait: {until: 'contact.nosuch'}\n", []string{
			`f.yaml:5:27: wait until: CEL type error: undefined field 'nosuch'; contact has id, email, phone, timezone, lifecycle_stage, journey_stage, is_customer, attributes, created_at, updated_at: write contact.attributes.NAME for a CRM attribute`,
		}},
		{"CEL error in block scalar", head + "entry: |\n  contact.email != \"\" &&\n    contact.nosuch\nsteps: [{id: a, exit: {}}]\n", []string{
			`f.yaml:5:12: entry: CEL type error: undefined field 'nosuch'; contact has id, email, phone, timezone, lifecycle_stage, journey_stage, is_customer, attributes, created_at, updated_at: write contact.attributes.NAME for a CRM attribute`,
		}},
		{"CEL undeclared variable", head + "exit: ['contct.is_customer']\nsteps: [{id: a, exit: {}}]\n", []string{
			`f.yaml:3:9: exit[0]: CEL type error: undeclared reference to 'contct' (did you mean 'contact'?); the variables are contact, event and journey`,
		}},
		{"filter not bool", "id: j\ntrigger: {event: a, filter: 'event.name'}\nsteps: [{id: a, exit: {}}]\n", []string{
			"f.yaml:2:30: filter must be a condition (bool), but `event.name` is a string; compare it, such as event.properties.plan == \"pro\"",
		}},
		{"key not string", head + "key: 'contact.is_customer'\nsteps: [{id: a, exit: {}}]\n", []string{
			"f.yaml:3:7: key must be a string, but `contact.is_customer` is a condition (bool); convert it with string(...), or pick a string field such as event.properties.webinar_id",
		}},
		{"wait until not timestamp", head + "steps:\n  - id: a\n    wait: {until: '\"tomorrow\"'}\n", []string{
			"f.yaml:5:20: wait until must be a timestamp, but `\"tomorrow\"` is a string; write a timestamp, such as timestamp(event.properties.starts_at) - duration(\"1h\")",
		}},
		{"bad duration", head + "steps:\n  - id: a\n    wait: {for: 3 days}\n", []string{
			`f.yaml:5:17: wait for: bad duration "3 days"; write 3d`,
		}},
		{"duration without unit", head + "steps:\n  - id: a\n    wait: {for: 30}\n", []string{
			`f.yaml:5:17: wait for: 30 has no unit; write 30m, 30h or 30d`,
		}},
		{"sms without purpose", head + "steps:\n  - id: a\n    sms: {template: s}\n", []string{
			`f.yaml:5:5: sms purpose is missing; SMS is sent only where a journey says why: add purpose: reminder | decision_point | time_sensitive | onboarding | transactional`,
		}},
		{"sms unknown purpose", head + "steps:\n  - id: a\n    sms: {template: s, purpose: remind}\n", []string{
			`f.yaml:5:33: unknown sms purpose "remind"; did you mean "reminder"?`,
		}},
		{"missing template", head + "steps:\n  - id: a\n    email: {template: missing}\n  - id: b\n    sms: {template: missing, purpose: reminder}\n", []string{
			`f.yaml:5:23: email template "missing" does not exist; create it or fix the name`,
			`f.yaml:7:21: sms template "missing" does not exist; create it or fix the name`,
		}},
		{"two kinds in a step", head + "steps:\n  - id: a\n    email: {template: t}\n    sms: {template: t, purpose: reminder}\n", []string{
			`f.yaml:6:5: step "a" has both email and sms; a step does one thing: move sms to a step of its own`,
		}},
		{"no kind in a step", head + "steps:\n  - id: a\n    next: a\n", []string{
			`f.yaml:4:5: step "a" has nothing to do; add one of: email, sms, wait, wait_for, branch, split, update_contact, webhook, exit`,
		}},
		{"trigger without kind", "id: j\ntrigger: {filter: 'true'}\nsteps: [{id: a, exit: {}}]\n", []string{
			`f.yaml:2:1: trigger needs one of event, attribute or date; write event: NAME to enter on an event`,
		}},
		{"trigger with two kinds", "id: j\ntrigger: {event: a, attribute: 'true'}\nsteps: [{id: a, exit: {}}]\n", []string{
			`f.yaml:2:21: trigger has both event and attribute; a journey has exactly one trigger: keep one and remove the other`,
		}},
		{"holdout out of range", head + "holdout: 101\nsteps: [{id: a, exit: {}}]\n", []string{
			`f.yaml:3:10: holdout 101 is out of range; holdout is a percent of entrants from 0 to 100, written as a whole number, such as holdout: 10`,
		}},
		{"holdout with percent sign", head + "holdout: 10%\nsteps: [{id: a, exit: {}}]\n", []string{
			`f.yaml:3:10: holdout "10%": write the number without %: holdout: 10`,
		}},
		{"bad reentry", head + "reentry: sometimes\nsteps: [{id: a, exit: {}}]\n", []string{
			`f.yaml:3:10: bad reentry "sometimes"; write reentry: never, reentry: always or reentry: {after: 30d}`,
		}},
		{"reentry duration without after", head + "reentry: 30d\nsteps: [{id: a, exit: {}}]\n", []string{
			`f.yaml:3:10: bad reentry "30d"; to allow re-entry after a time write reentry: {after: 30d}`,
		}},
		{"missing id", "trigger: {event: a}\nsteps: [{id: a, exit: {}}]\n", []string{
			`f.yaml:1:1: id is missing; write id: my-journey (lowercase letters, digits and dashes)`,
		}},
		{"bad id", "id: Webinar Reminder\ntrigger: {event: a}\nsteps: [{id: a, exit: {}}]\n", []string{
			`f.yaml:1:5: id "Webinar Reminder": use lowercase letters, digits and dashes, such as webinar-reminder`,
		}},
		{"bad weekday", head + "steps:\n  - id: a\n    wait: {until_local: \"09:00\", weekdays: [mon, tues, funday]}\n", []string{
			`f.yaml:5:50: bad weekday "tues"; write tue`,
			`f.yaml:5:56: bad weekday "funday"; write one of: sun, mon, tue, wed, thu, fri, sat`,
		}},
		{"split weights", head + "steps:\n  - id: a\n    split: [{weight: 50, next: b}, {weight: 40, next: b}]\n  - id: b\n    exit: {}\n", []string{
			`f.yaml:5:5: split weights add up to 90, not 100; change them so they add up to 100`,
		}},
		{"bad time of day", head + "steps:\n  - id: a\n    wait: {until_local: \"9am\"}\n", []string{
			`f.yaml:5:25: until_local: bad time of day "9am"; write 24-hour HH:MM in quotes, such as "09:00" or "17:30"`,
		}},
		{"exit with next", head + "steps:\n  - id: a\n    exit: {}\n    next: a\n", []string{
			`f.yaml:6:5: step "a" is an exit step: it ends the enrollment, so it has no next; remove next`,
		}},
		{"update_contact unknown field", head + "steps:\n  - id: a\n    update_contact: {set: {plan: pro, email: x}}\n", []string{
			`f.yaml:5:28: unknown contact field "plan"; for an attribute write "attributes.plan"; the fields are: lifecycle_stage, journey_stage, is_customer`,
			`f.yaml:5:39: a journey cannot set email; it can set lifecycle_stage, journey_stage, is_customer or attributes.NAME`,
		}},
		{"webhook bad url", head + "steps:\n  - id: a\n    webhook: {url: crm.example.com}\n", []string{
			`f.yaml:5:20: bad webhook url "crm.example.com"; write a full http or https URL, such as https://crm.example.com/hooks/nudge`,
		}},
		{"wait_for without timeout", head + "steps:\n  - id: a\n    wait_for: {event: e}\n", []string{
			`f.yaml:5:5: wait_for needs a timeout, so no contact waits forever; write timeout: 2d`,
		}},
		{"YAML syntax error", "id: j\ntrigger: [\n", []string{
			`f.yaml:2:10: YAML syntax error: sequence end token ']' not found`,
		}},
		{"empty file", "", []string{
			`f.yaml:1:1: the file is empty; a journey starts with id: my-journey, a trigger and steps (see docs/journeys.md)`,
		}},
		{"duplicate field", "id: j\nid: k\ntrigger: {event: a}\nsteps: [{id: a, exit: {}}]\n", []string{
			`f.yaml:2:1: the journey: field "id" is given twice (first at line 1); keep one`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tt.src), Options{Templates: templates})
			var got []string
			if err != nil {
				var ve *ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("error is %T, want *ValidationError", err)
				}
				got = strings.Split(err.Error(), "\n")
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidationErrorIsInvalid(t *testing.T) {
	_, err := Parse("f.yaml", []byte("id: j\n"), Options{})
	if got := nudge.ErrorCode(err); got != nudge.EINVALID {
		t.Errorf("ErrorCode = %q, want %q", got, nudge.EINVALID)
	}
}
