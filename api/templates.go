package api

import (
	"context"
	"io"
	"net/http"
	"testing/fstest"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/template"
)

// maxPreviewBytes caps a preview request (which may carry a template's source).
const maxPreviewBytes = 256 << 10

// PreviewParams say what to preview: a template of the set, or Source (the
// text of a NAME.email.liquid or NAME.sms.liquid file, not yet saved),
// rendered for a stored contact.
type PreviewParams struct {
	Name      string
	Channel   string // "email", "sms", or "" for the email template if there is one, else the SMS one
	ContactID string
	Source    string // optional: render this source instead of the set's template
	Limits    template.SMSLimits
}

// Preview is a template rendered with a real contact, with the SMS lint of
// an SMS text.
type Preview struct {
	Template  string            `json:"template"`
	Channel   string            `json:"channel"`
	ContactID string            `json:"contact_id"`
	Journey   *template.Journey `json:"journey,omitempty"` // from the contact's latest enrollment
	EventName string            `json:"event,omitempty"`   // the event that started that enrollment
	Subject   string            `json:"subject,omitempty"`
	Text      string            `json:"text"`
	HTML      string            `json:"html,omitempty"`
	SMS       *SMSLintJSON      `json:"sms,omitempty"`
}

// SMSLintJSON is template.SMSLint as the API writes it.
type SMSLintJSON struct {
	Encoding   string   `json:"encoding"` // GSM-7 or UCS-2
	Characters int      `json:"characters"`
	Segments   int      `json:"segments"`
	NotGSM     string   `json:"not_gsm,omitempty"` // the first character that made the text UCS-2
	Cost       *float64 `json:"cost,omitempty"`    // per send, when a price per segment is configured
	Warnings   []string `json:"warnings"`
	Errors     []string `json:"errors"`
}

// PreviewTemplate renders a template with the data the delivery worker would
// give it for the contact: the contact itself, and the journey and
// triggering event of the contact's latest enrollment (none when it has
// none). It is what POST /v1/templates/{name}/preview and
// `nudge template preview` answer. A template with a syntax error or a
// render error is EINVALID with its file:line; an unknown template or
// contact is ENOTFOUND.
func PreviewTemplate(ctx context.Context, s nudge.Store, set *template.Set, p PreviewParams) (*Preview, error) {
	switch p.Channel {
	case "", nudge.ChannelEmail, nudge.ChannelSMS:
	default:
		return nil, nudge.FieldErrorf("channel", "%q: want email or sms", p.Channel)
	}
	if p.ContactID == "" {
		return nil, nudge.FieldErrorf("contact_id", "required: the contact to render the template for")
	}
	if p.Source != "" {
		// A fresh set, so that previewing an edit never changes what is sent.
		one, _ := template.Load(fstest.MapFS{}, template.Options{})
		filename := p.Name + ".email.liquid"
		if p.Channel == nudge.ChannelSMS {
			filename = p.Name + ".sms.liquid"
		}
		if err := one.Add(filename, p.Source); err != nil {
			return nil, err
		}
		set = one
	}
	if set == nil {
		return nil, nudge.Errorf(nudge.ENOTFOUND, "no templates are loaded (see the server's templates folder)")
	}
	ch := p.Channel
	if ch == "" {
		ch = nudge.ChannelSMS
		if set.Exists(nudge.ChannelEmail, p.Name) {
			ch = nudge.ChannelEmail
		}
	}
	if !set.Exists(ch, p.Name) {
		return nil, nudge.Errorf(nudge.ENOTFOUND, "%s template %q does not exist", ch, p.Name)
	}
	c, err := s.ContactGet(ctx, p.ContactID)
	if err != nil {
		return nil, err
	}
	data := template.Data{Contact: c}
	out := &Preview{Template: p.Name, Channel: ch, ContactID: c.ID}
	ens, err := s.EnrollmentList(ctx, &nudge.EnrollmentListParams{ContactID: c.ID, Limit: 10000})
	if err != nil {
		return nil, err
	}
	if n := len(ens); n > 0 {
		en := ens[n-1] // ids sort in creation order
		data.Event = en.Event
		data.Journey = template.Journey{ID: en.JourneyID, Version: en.Version}
		if j, err := s.JourneyGet(ctx, en.JourneyID); err == nil {
			data.Journey.Name = j.Name
		} else if nudge.ErrorCode(err) != nudge.ENOTFOUND {
			return nil, err
		}
		out.Journey = &data.Journey
		if en.Event != nil {
			out.EventName = en.Event.Name
		}
	}
	r, err := set.RenderChannel(ch, p.Name, data)
	if err != nil {
		return nil, err
	}
	out.Subject, out.Text, out.HTML = r.Subject, r.Text, r.HTML
	if ch == nudge.ChannelSMS {
		out.SMS = lintJSON(template.LintSMS(r.Text, p.Limits), p.Limits.PricePerSegment > 0)
	}
	return out, nil
}

func lintJSON(l *template.SMSLint, priced bool) *SMSLintJSON {
	j := &SMSLintJSON{Encoding: l.Charset, Characters: l.Characters, Segments: l.Segments,
		Warnings: l.Warnings, Errors: l.Errors}
	if l.NotGSM != 0 {
		j.NotGSM = string(l.NotGSM)
	}
	if priced {
		cost := l.Cost
		j.Cost = &cost
	}
	if j.Warnings == nil {
		j.Warnings = []string{}
	}
	if j.Errors == nil {
		j.Errors = []string{}
	}
	return j
}

// handleTemplatePreview renders a template with a stored contact. The body
// is {"contact_id": "…", "channel": "sms"|"email"}, and optionally
// "source": a template's text to preview before saving it.
func (s *Server) handleTemplatePreview(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPreviewBytes))
	if err != nil {
		s.fail(w, r, nudge.Errorf(nudge.EINVALID, "the request body is over %d bytes or unreadable", maxPreviewBytes))
		return
	}
	var req struct {
		ContactID string `json:"contact_id"`
		Channel   string `json:"channel"`
		Source    string `json:"source"`
	}
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := PreviewTemplate(r.Context(), s.store, s.templates, PreviewParams{
		Name: r.PathValue("name"), Channel: req.Channel, ContactID: req.ContactID,
		Source: req.Source, Limits: s.smsLimits,
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}
