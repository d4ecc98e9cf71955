package template

import (
	"strings"
	"time"

	"github.com/osteele/liquid"

	"github.com/nudge/nudge"
)

// Data is what a template sees: the contact, the event that triggered or
// advanced the enrollment (nil when there is none), the journey and the
// message being rendered.
type Data struct {
	Contact *nudge.Contact
	Event   *nudge.Event
	Journey Journey
	Message *nudge.Message
}

// Journey is the journey a message belongs to, as templates see it.
type Journey struct {
	ID      string
	Name    string
	Version int64
}

// Rendered is a rendered template. An email has Subject, Text and, when
// the template has an HTML part, HTML; an SMS has Text only.
type Rendered struct {
	Channel string
	Subject string
	Text    string
	HTML    string
}

// Render renders the template of the name: the email template when one
// exists, else the SMS template. RenderChannel chooses explicitly.
func (s *Set) Render(name string, data Data) (*Rendered, error) {
	if s.Exists(nudge.ChannelEmail, name) {
		return s.RenderChannel(nudge.ChannelEmail, name, data)
	}
	return s.RenderChannel(nudge.ChannelSMS, name, data)
}

// RenderChannel renders the channel's ("email", "sms") template of the
// name. Dates are formatted in the contact's time zone. A value missing
// from the data renders empty (or as its default filter says); an error
// is ENOTFOUND for an unknown template or EINVALID with the file and line.
func (s *Set) RenderChannel(channel, name string, data Data) (*Rendered, error) {
	s.mu.Lock()
	f, ok := s.files[channel+"/"+name]
	s.mu.Unlock()
	if !ok {
		return nil, nudge.Errorf(nudge.ENOTFOUND, "%s template %q does not exist", channel, name)
	}
	zone := ""
	if data.Contact != nil {
		zone = data.Contact.Timezone
	}
	var b map[string]any // built for the first part Liquid renders
	r := &Rendered{Channel: channel}
	for _, p := range f.parts {
		out, ok := "", false
		if p.fast != nil {
			out, ok = p.fast.render(data.lookup)
		}
		if !ok {
			if b == nil {
				b = bindings(data)
			}
			t, err := s.engine(zone).template(f, p)
			if err != nil {
				return nil, err
			}
			if out, err = render(t, b, f); err != nil {
				return nil, err
			}
		}
		switch p.name {
		case partSubject:
			// A subject is one header line: a value must not add headers.
			r.Subject = strings.Join(strings.Fields(out), " ")
		case partHTML:
			r.HTML = out
		default:
			r.Text = out
		}
	}
	return r, nil
}

// Field names templates see, as in the JSON API.
var (
	contactFields = []string{"id", "email", "phone", "timezone", "lifecycle_stage", "journey_stage", "is_customer", "attributes", "created_at", "updated_at"}
	eventFields   = []string{"seq", "message_id", "type", "contact_id", "anonymous_id", "name", "properties", "context", "timestamp", "received_at"}
	journeyFields = []string{"id", "name", "version"}
	messageFields = []string{"id", "enrollment_id", "contact_id", "journey_id", "version", "step_id", "channel", "template", "purpose", "details", "created_at"}
	// dynamicFields hold whatever the CRM or the event sent: any key may be
	// missing at render, so none is an error at validation.
	dynamicFields = map[string]bool{"contact.attributes": true, "event.properties": true, "event.context": true, "message.details": true}
)

func timeValue(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

func bindings(d Data) map[string]any {
	b := map[string]any{"contact": map[string]any{"attributes": map[string]any{}}, "event": map[string]any{"properties": map[string]any{}, "context": map[string]any{}}, "message": map[string]any{"details": map[string]any{}}}
	if c := d.Contact; c != nil {
		b["contact"] = map[string]any{
			"id": c.ID, "email": c.Email, "phone": c.Phone, "timezone": c.Timezone,
			"lifecycle_stage": c.LifecycleStage, "journey_stage": c.JourneyStage,
			"is_customer": c.IsCustomer, "attributes": orEmpty(c.Attributes),
			"created_at": timeValue(c.CreatedAt), "updated_at": timeValue(c.UpdatedAt),
		}
	}
	if e := d.Event; e != nil {
		b["event"] = map[string]any{
			"seq": e.Seq, "message_id": e.MessageID, "type": e.Type, "contact_id": e.ContactID,
			"anonymous_id": e.AnonymousID, "name": e.Name, "properties": orEmpty(e.Properties), "context": orEmpty(e.Context),
			"timestamp": timeValue(e.Timestamp), "received_at": timeValue(e.ReceivedAt),
		}
	}
	b["journey"] = map[string]any{"id": d.Journey.ID, "name": d.Journey.Name, "version": d.Journey.Version}
	if m := d.Message; m != nil {
		b["message"] = map[string]any{
			"id": m.ID, "enrollment_id": m.EnrollmentID, "contact_id": m.ContactID, "journey_id": m.JourneyID,
			"version": m.Version, "step_id": m.StepID, "channel": m.Channel, "template": m.Template,
			"purpose": m.Purpose, "details": orEmpty(m.Details), "created_at": timeValue(m.CreatedAt),
		}
	}
	return b
}

// lookup is a root for plans: what bindings(d) holds at the first two keys
// of path, read from d without building the bindings. A path of one key
// names a whole object, which is never a string.
func (d *Data) lookup(path []string) (any, int) {
	switch path[0] {
	case "contact", "event", "journey", "message":
	default:
		return nil, 1
	}
	if len(path) == 1 {
		return map[string]any{}, 1
	}
	return d.field(path[0], path[1]), 2
}

// field is bindings(d)[top][key], for top one of contact, event, journey
// and message.
func (d *Data) field(top, key string) any {
	switch top {
	case "contact":
		c := d.Contact
		if c == nil {
			if key == "attributes" {
				return map[string]any{}
			}
			return nil
		}
		switch key {
		case "id":
			return c.ID
		case "email":
			return c.Email
		case "phone":
			return c.Phone
		case "timezone":
			return c.Timezone
		case "lifecycle_stage":
			return c.LifecycleStage
		case "journey_stage":
			return c.JourneyStage
		case "is_customer":
			return c.IsCustomer
		case "attributes":
			return orEmpty(c.Attributes)
		case "created_at":
			return timeValue(c.CreatedAt)
		case "updated_at":
			return timeValue(c.UpdatedAt)
		}
	case "event":
		e := d.Event
		if e == nil {
			if key == "properties" || key == "context" {
				return map[string]any{}
			}
			return nil
		}
		switch key {
		case "seq":
			return e.Seq
		case "message_id":
			return e.MessageID
		case "type":
			return e.Type
		case "contact_id":
			return e.ContactID
		case "anonymous_id":
			return e.AnonymousID
		case "name":
			return e.Name
		case "properties":
			return orEmpty(e.Properties)
		case "context":
			return orEmpty(e.Context)
		case "timestamp":
			return timeValue(e.Timestamp)
		case "received_at":
			return timeValue(e.ReceivedAt)
		}
	case "journey":
		switch key {
		case "id":
			return d.Journey.ID
		case "name":
			return d.Journey.Name
		case "version":
			return d.Journey.Version
		}
	case "message":
		m := d.Message
		if m == nil {
			if key == "details" {
				return map[string]any{}
			}
			return nil
		}
		switch key {
		case "id":
			return m.ID
		case "enrollment_id":
			return m.EnrollmentID
		case "contact_id":
			return m.ContactID
		case "journey_id":
			return m.JourneyID
		case "version":
			return m.Version
		case "step_id":
			return m.StepID
		case "channel":
			return m.Channel
		case "template":
			return m.Template
		case "purpose":
			return m.Purpose
		case "details":
			return orEmpty(m.Details)
		case "created_at":
			return timeValue(m.CreatedAt)
		}
	}
	return nil
}

// orEmpty is m, or an empty map for nil, as bindings hold a map.
func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// render renders one part, turning a panic of the Liquid library into an
// error about the template.
func render(t *liquid.Template, b map[string]any, f *file) (out string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = nudge.Errorf(nudge.EINVALID, "%s: cannot render the template: %v", f.path, r)
		}
	}()
	out, serr := t.RenderString(b)
	if serr != nil {
		return "", sourceError(f, serr)
	}
	return out, nil
}
