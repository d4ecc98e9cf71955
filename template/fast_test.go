package template

import (
	"testing"
	"time"

	"github.com/nudge/nudge"
)

// A plan renders exactly what Liquid renders, for every part it takes and
// every value it does not hand back to Liquid.
func TestPlanMatchesLiquid(t *testing.T) {
	sources := []string{
		`Hi {{ contact.attributes.first_name }}!`,
		`Hi {{ contact.attributes.first_name | default: "there" }}, {{ contact.attributes.first_name }}.`,
		`{{ contact.attributes.first_name | default: 'x' | escape }}`,
		`{{ contact.attributes.first_name | escape | default: "none" }}`,
		`<p>{{ contact.attributes.first_name | escape }}</p>{{ event.properties.title | escape }}`,
		`{{ contact.attributes.missing | escape }}|{{ contact.attributes.missing | default: "d" }}|{{ contact.attributes.missing }}`,
		`{{ nothing.at.all | default: "top" }}`,
		`[{{ nothing.at.all }}]`,
		`{{ contact.email.domain }}`,
		`{{ contact.attributes.nested.inner | default: "no inner" }}`,
		`{{ contact.attributes.empty | default: "was empty" }} {{ contact.attributes.html | raw }}`,
		`{{ contact.id }} {{ message.id }} {{ journey.name }} {{ journey.version }} {{ contact.is_customer }}`,
		`{{ contact.attributes.count }} {{ contact.attributes.flag | default: "f" }} {{ contact.created_at }}`,
		`no objects at all: {{ "{{" }}`,
		`{{contact.attributes.first_name|default:"tight"|escape}}`,
		`{{ contact.attributes.first_name | default: "a|b" }}`,
		"multi\nline {{ contact.attributes.first_name }}\n{{ contact.attributes.html | escape }}\n",
	}
	for _, attrs := range []map[string]any{
		{"first_name": "Ada", "html": `<b>"Tom" & 'Jerry'</b>`, "empty": "", "nested": map[string]any{"inner": "deep"}},
		{"first_name": "", "nested": "a string", "html": "é ü 🎉"},
		{"first_name": nil, "count": 3.0, "flag": false},
		{"first_name": 42.0, "nested": map[string]any{}},
		{},
	} {
		fast := 0
		c := &nudge.Contact{ID: "c1", Email: "ada@example.org", Attributes: attrs, CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
		b := bindings(Data{Contact: c, Message: &nudge.Message{ID: "m1"}, Journey: Journey{ID: "j", Name: "Webinar & co", Version: 3},
			Event: &nudge.Event{Properties: map[string]any{"title": "Loops <2>"}}})
		e := newEngine(time.UTC)
		for _, src := range sources {
			want, err := e.ParseAndRenderString(src, b)
			if err != nil {
				t.Fatalf("%s: %v", src, err)
			}
			p := compile(src)
			if p == nil {
				continue
			}
			got, ok := p.render(mapRoot(b))
			if ok {
				fast++
			}
			if ok && got != want {
				t.Errorf("%s with %v:\nplan   %q\nliquid %q", src, attrs, got, want)
			}
		}
		t.Logf("%v: %d of %d parts by the plan", attrs, fast, len(sources))
	}
}

// The plain parts take the plan, and the rest Liquid.
func TestCompile(t *testing.T) {
	for src, want := range map[string]bool{
		`Hi {{ contact.attributes.first_name | default: "there" | escape }}`: true,
		`text only`:              true,
		`{{ a.b | raw }}`:        true,
		`{% if x %}y{% endif %}`: false,
		`{{- a }}`:               false,
		`{{ a | upcase }}`:       false,
		`{{ a.size }}`:           false,
		`{{ a[0] }}`:             false,
		`{{ "lit" }}`:            false,
		`{{ a | default: b }}`:   false,
		`{{ a | date: "%Y" }}`:   false,
	} {
		if got := compile(src) != nil; got != want {
			t.Errorf("compile(%q) has a plan: %v, want %v", src, got, want)
		}
	}
	b := bindings(Data{Contact: &nudge.Contact{Attributes: map[string]any{"first_name": "Ada"}}})
	if out, ok := compile(`Hi {{ contact.attributes.first_name | default: "there" | escape }}`).render(mapRoot(b)); !ok || out != "Hi Ada" {
		t.Errorf("render = %q, %v; want \"Hi Ada\" from the plan", out, ok)
	}
}

// Data.lookup finds what bindings hold, for every path a plan can name,
// with every object present or missing.
func TestLookupMatchesBindings(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	full := Data{
		Contact: &nudge.Contact{ID: "c1", Email: "a@example.org", Phone: "+14155550100", Timezone: "UTC", LifecycleStage: "lead",
			JourneyStage: "new", IsCustomer: true, Attributes: map[string]any{"first_name": "Ada", "n": 1.0}, CreatedAt: at},
		Event: &nudge.Event{Seq: 7, MessageID: "ev", Type: "track", ContactID: "c1", AnonymousID: "an", Name: "x",
			Properties: map[string]any{"title": "T"}, Context: map[string]any{"ip": "1"}, Timestamp: at},
		Journey: Journey{ID: "j", Name: "J", Version: 2},
		Message: &nudge.Message{ID: "m", EnrollmentID: "e", ContactID: "c1", JourneyID: "j", Version: 2, StepID: "s",
			Channel: "email", Template: "t", Purpose: "marketing", Details: map[string]any{"k": "v"}, CreatedAt: at},
	}
	bare := Data{Contact: &nudge.Contact{ID: "c2"}, Event: &nudge.Event{}, Message: &nudge.Message{}}
	fields := map[string][]string{"contact": contactFields, "event": eventFields, "journey": journeyFields, "message": messageFields, "other": {"id"}}
	for _, d := range []Data{full, bare, {}} {
		b := bindings(d)
		for top, fs := range fields {
			paths := [][]string{{top}, {top, "unknown"}}
			for _, f := range append(fs, "unknown") {
				for _, sub := range []string{"first_name", "title", "ip", "k", "n", "missing"} {
					paths = append(paths, []string{top, f}, []string{top, f, sub}, []string{top, f, sub, "deeper"})
				}
			}
			for _, path := range paths {
				e := expr{path: path, filters: []filter{{name: "default", arg: "d"}}}
				got, gotOK := e.eval(d.lookup)
				want, wantOK := e.eval(mapRoot(b))
				if got != want || gotOK != wantOK {
					t.Errorf("%v with %+v: lookup %q, %v; bindings %q, %v", path, d, got, gotOK, want, wantOK)
				}
			}
		}
	}
}

// mapRoot looks objects up in bindings, as Liquid does: the reference the
// plans' own lookups are compared with.
func mapRoot(b map[string]any) root {
	return func([]string) (any, int) { return b, 0 }
}
