package template

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/nudge/nudge"
)

// BenchmarkRenderNewsletter renders the delivery benchmark's 4.4 KB
// personalized email: subject, text and HTML parts, each a plan.
func BenchmarkRenderNewsletter(b *testing.B) {
	src := "Subject: {{ contact.attributes.first_name | default: \"Hello\" }}, this week at Growth Loops\n\n" +
		"Hi {{ contact.attributes.first_name | default: \"there\" }}, here is what happened this week.\n" +
		"--- html ---\n<html><body><h1>Hi {{ contact.attributes.first_name | default: \"there\" }}</h1>\n" +
		strings.Repeat("<p>Growth loops compound: each cohort of users brings the next one. {{ event.properties.title }} shows how, "+
			"with examples from teams like yours, {{ contact.attributes.first_name }}.</p>\n", 24) +
		"<p><a href=\"https://example.com/u/{{ contact.id }}\">Unsubscribe</a></p></body></html>\n"
	set, err := Load(fstest.MapFS{"newsletter.email.liquid": {Data: []byte(src)}}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	d := Data{Contact: &nudge.Contact{ID: "c1", Attributes: map[string]any{"first_name": "Ada"}},
		Event:   &nudge.Event{Properties: map[string]any{"title": "Growth Loops 101"}},
		Message: &nudge.Message{ID: "m1"}, Journey: Journey{ID: "j", Name: "J", Version: 1}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := set.RenderChannel(nudge.ChannelEmail, "newsletter", d); err != nil {
			b.Fatal(err)
		}
	}
}
