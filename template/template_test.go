package template

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/nudge/nudge"
)

var now = time.Date(2026, 3, 10, 14, 0, 0, 0, time.UTC)

func sampleContact() *nudge.Contact {
	return &nudge.Contact{
		ID: "c-42", Email: "ada@example.com", Phone: "+12025550123", Timezone: "America/New_York",
		LifecycleStage: nudge.StageCustomer, IsCustomer: true,
		Attributes: map[string]any{"first_name": "Ada", "plan": "Pro", "owner": "Grace", "renewal_date": "2026-04-01"},
		CreatedAt:  now, UpdatedAt: now,
	}
}

func sampleEvent() *nudge.Event {
	return &nudge.Event{
		Type: nudge.EventTrack, Name: "webinar_registered", ContactID: "c-42", Timestamp: now,
		Properties: map[string]any{"title": "Journeys 101", "starts_at": "2026-03-12T17:00:00Z", "join_url": "https://example.com/j/1"},
	}
}

func mustLoad(t *testing.T, files map[string]string) *Set {
	t.Helper()
	fsys := fstest.MapFS{}
	for name, src := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(src)}
	}
	s, err := Load(fsys, Options{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return s
}

func TestExamples(t *testing.T) {
	dirs, _ := filepath.Glob("../examples/*/templates")
	if len(dirs) == 0 {
		t.Fatal("no example templates")
	}
	data := Data{Contact: sampleContact(), Event: sampleEvent(), Journey: Journey{ID: "webinar", Version: 3}}
	for _, dir := range dirs {
		s, err := Load(os.DirFS(dir), Options{})
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		for _, k := range s.Names() {
			ch, name, _ := strings.Cut(k, "/")
			t.Run(filepath.Base(filepath.Dir(dir))+"/"+k, func(t *testing.T) {
				if err := s.Validate(name); err != nil {
					t.Fatalf("Validate: %v", err)
				}
				r, err := s.RenderChannel(ch, name, data)
				if err != nil {
					t.Fatalf("Render: %v", err)
				}
				if strings.Contains(r.Subject+r.Text, "{{") || strings.TrimSpace(r.Text) == "" {
					t.Fatalf("rendered %+v", r)
				}
				if ch == nudge.ChannelEmail && r.Subject == "" {
					t.Errorf("no subject: %+v", r)
				}
				if ch == nudge.ChannelSMS {
					if l := LintSMS(r.Text, SMSLimits{}); l.Err() != nil || len(l.Warnings) > 0 {
						t.Errorf("lint %q: %+v", r.Text, l)
					}
				}
			})
		}
	}
	// The webinar confirmation formats starts_at (17:00 UTC) in New York.
	s, _ := Load(os.DirFS("../examples/webinar/templates"), Options{})
	r, err := s.Render("webinar-confirmation", data)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Thursday 12 March, 13:00 EDT"; !strings.Contains(r.Text, want) {
		t.Errorf("text %q does not contain %q", r.Text, want)
	}
	if want := "You're registered: Journeys 101"; r.Subject != want {
		t.Errorf("subject = %q, want %q", r.Subject, want)
	}
}

func TestRender(t *testing.T) {
	s := mustLoad(t, map[string]string{
		"welcome.email.liquid": "Subject: Hi {{ contact.attributes.first_name | default: \"there\" }}\n\nHello {{ contact.attributes.first_name }},\nplan {{ contact.attributes.plan }}.\n--- html ---\n<p>Hello {{ contact.attributes.first_name }} &amp; {{ contact.attributes.bio | raw }}</p>\n{% raw %}{{ literal }}{% endraw %}\n",
		"nudge.sms.liquid":     "{{ contact.attributes.first_name | default: \"Hi\" }}, it starts {{ event.properties.starts_at | local_time: \"Mon 3:04 PM\" }}. Renews {{ contact.attributes.renewal_date | date: \"%b %-d\" }}.\n",
		"subject.email.liquid": "Subject: {{ contact.attributes.first_name }}\n\nx\n",
	})
	c := sampleContact()
	c.Attributes["first_name"] = `<b>Ada</b> "Q"`
	c.Attributes["bio"] = "<i>ok</i>"
	r, err := s.Render("welcome", Data{Contact: c})
	if err != nil {
		t.Fatal(err)
	}
	if want := "Hi <b>Ada</b> \"Q\""; r.Subject != want {
		t.Errorf("subject = %q, want %q", r.Subject, want)
	}
	if want := "Hello <b>Ada</b> \"Q\",\nplan Pro."; r.Text != want {
		t.Errorf("text = %q, want %q", r.Text, want)
	}
	if want := "<p>Hello &lt;b&gt;Ada&lt;/b&gt; &#34;Q&#34; &amp; <i>ok</i></p>\n{{ literal }}"; r.HTML != want {
		t.Errorf("html = %q, want %q", r.HTML, want)
	}

	// Missing attributes render empty or as their default.
	r, err = s.Render("welcome", Data{Contact: &nudge.Contact{ID: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Subject != "Hi there" || r.Text != "Hello ,\nplan ." {
		t.Errorf("missing values: %+v", r)
	}

	// Dates in the contact's zone; a date without a time is not shifted.
	r, err = s.Render("nudge", Data{Contact: sampleContact(), Event: sampleEvent()})
	if err != nil {
		t.Fatal(err)
	}
	if want := "Ada, it starts Thu 1:00 PM. Renews Apr 1."; r.Text != want {
		t.Errorf("sms = %q, want %q", r.Text, want)
	}
	r, err = s.Render("nudge", Data{Contact: &nudge.Contact{ID: "x", Timezone: "Asia/Tokyo"}, Event: sampleEvent()})
	if err != nil {
		t.Fatal(err)
	}
	if want := "Hi, it starts Fri 2:00 AM. Renews ."; r.Text != want {
		t.Errorf("sms = %q, want %q", r.Text, want)
	}

	// A value cannot add lines to the subject.
	c.Attributes["first_name"] = "Ada\r\nBcc: eve@example.com"
	r, err = s.Render("subject", Data{Contact: c})
	if err != nil {
		t.Fatal(err)
	}
	if want := "Ada Bcc: eve@example.com"; r.Subject != want {
		t.Errorf("subject = %q, want %q", r.Subject, want)
	}

	if _, err := s.Render("nope", Data{}); nudge.ErrorCode(err) != nudge.ENOTFOUND {
		t.Errorf("unknown template: %v", err)
	}
	if !s.Exists("email", "welcome") || s.Exists("sms", "welcome") || !s.Exists("sms", "nudge") {
		t.Error("Exists")
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, file, src, want string
	}{
		{"unclosed tag", "a.email.liquid", "Subject: x\n\nline\n{% if contact.is_customer %}\nyes\n", "a.email.liquid:4: "},
		{"bad object in sms", "b.sms.liquid", "hi\nthere {{ contact.id | }}", "b.sms.liquid:2: "},
		{"error in html part", "c.email.liquid", "Subject: x\n\ntext\n--- html ---\n<p>\n{% endif %}\n", "c.email.liquid:6: "},
		{"error in subject", "d.email.liquid", "Subject: {% if %}\n\nx\n", "d.email.liquid:1: "},
		{"no subject", "e.email.liquid", "Hello\n", "e.email.liquid:1: expected a header"},
		{"unknown header", "f.email.liquid", "Subject: x\nFrom: y\n\nz\n", `f.email.liquid:2: unknown header "From"`},
		{"empty subject header block", "g.email.liquid", "\nbody\n", "g.email.liquid:1: an email template starts with a Subject: line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Load(fstest.MapFS{tt.file: {Data: []byte(tt.src)}, "ok.sms.liquid": {Data: []byte("ok")}, "README.md": {Data: []byte("x")}}, Options{})
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("Load error = %v, want prefix %q", err, tt.want)
			}
			if nudge.ErrorCode(err) != nudge.EINVALID {
				t.Errorf("code = %q", nudge.ErrorCode(err))
			}
			if !s.Exists("sms", "ok") || len(s.Names()) != 1 {
				t.Errorf("the good template is lost: %v", s.Names())
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string // substrings of the error, "" for none
	}{
		{"fine", "Subject: {{ contact.attributes.x | default: journey.name }}\n\n{% for p in event.properties.items limit: 3 %}{{ p.name }} {{ forloop.index }}{% endfor %}{% assign n = contact.email | size %}{{ n }} {{ contact.created_at | date: \"%Y\" }} {{ message.details.code }} {{ contact.attributes['first name'] }}{% if contact.is_customer and event.name == 'x' %}y{% endif %}\n", nil},
		{"unknown top-level name", "Subject: x\n\nline two\n{{ user.name }}\n", []string{`t.email.liquid:4: unknown variable "user"`}},
		{"unknown contact field", "Subject: Hi {{ contact.first_name }}\n\nx\n", []string{`t.email.liquid:1: contact has no field "first_name"`, "contact.attributes.first_name"}},
		{"unknown field in a tag", "Subject: x\n\n{% if event.plan == 'pro' %}x{% endif %}\n", []string{`t.email.liquid:3: event has no field "plan"`}},
		{"in the html part", "Subject: x\n\ntext\n--- html ---\n<p>{{ journey.owner }}</p>\n", []string{`t.email.liquid:5: journey has no field "owner"`}},
		{"include", "Subject: x\n\n{% include 'secrets' %}\n", []string{"t.email.liquid:3: {% include %} is not allowed"}},
		{"unknown filter", "Subject: x\n\n{{ contact.id | shout }}\n", []string{`undefined filter "shout"`}},
		{"two problems", "Subject: {{ nope }}\n\n{{ contact.nope }}\n", []string{"t.email.liquid:1:", "t.email.liquid:3:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustLoad(t, map[string]string{"t.email.liquid": tt.src})
			err := s.Validate("t")
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %v, want it to contain %q", err, w)
				}
			}
		})
	}
	s := mustLoad(t, map[string]string{"t.sms.liquid": "hi"})
	if err := s.Validate("other"); nudge.ErrorCode(err) != nudge.ENOTFOUND {
		t.Errorf("Validate(other) = %v", err)
	}
}

func TestLintRendered(t *testing.T) {
	s := mustLoad(t, map[string]string{
		"long.sms.liquid": "{{ contact.attributes.first_name }}, " + strings.Repeat("x", 140) + " Reply STOP to opt out.",
	})
	c := sampleContact()
	r, err := s.Render("long", Data{Contact: c})
	if err != nil {
		t.Fatal(err)
	}
	if l := LintSMS(r.Text, SMSLimits{}); l.Segments != 2 || l.Charset != GSM7 {
		t.Errorf("Ada: %+v", l)
	}
	c.Attributes["first_name"] = "Zoë 😀"
	r, _ = s.Render("long", Data{Contact: c})
	l := LintSMS(r.Text, SMSLimits{PricePerSegment: 0.01})
	if l.Charset != UCS2 || l.Segments != 3 || len(l.Warnings) != 2 || l.Cost != 0.03 {
		t.Errorf("emoji: %+v", l)
	}
}

func FuzzTemplate(f *testing.F) {
	for _, s := range []string{
		"Subject: {{ contact.id }}\n\nx\n--- html ---\n<p>{{ contact.attributes.a | raw }}</p>",
		"Subject: x\n\n{% for a in event.properties.x %}{{ a['b'] }}{% endfor %}",
		"Subject: {{- contact.email -}}\n\n{% raw %}{{ x }}{% endraw %}",
		"Subject: \n\n{{ 'a\" | x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		s, _ := Load(fstest.MapFS{}, Options{})
		if err := s.Add("f.email.liquid", src); err != nil {
			return
		}
		_ = s.Validate("f")
		_, _ = s.Render("f", Data{Contact: sampleContact(), Event: sampleEvent()})
	})
}
