package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/api"
	"github.com/nudge/nudge/policy"
	"github.com/nudge/nudge/template"
)

// smsLimitsFromEnv reads the SMS lint's settings: NUDGE_SMS_PRICE (price
// per segment, for the cost estimate) and NUDGE_SMS_MAX_SEGMENTS.
func smsLimitsFromEnv() (template.SMSLimits, error) {
	var l template.SMSLimits
	if v := os.Getenv("NUDGE_SMS_PRICE"); v != "" {
		p, err := strconv.ParseFloat(v, 64)
		if err != nil || p < 0 {
			return l, fmt.Errorf("NUDGE_SMS_PRICE %q: want a price per segment such as 0.0079", v)
		}
		l.PricePerSegment = p
	}
	if v := os.Getenv("NUDGE_SMS_MAX_SEGMENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return l, fmt.Errorf("NUDGE_SMS_MAX_SEGMENTS %q: want a number of segments such as 10", v)
		}
		l.MaxSegments = n
	}
	return l, nil
}

// loadTemplates loads the templates of a folder. Templates with problems
// are left out of the set; their problems come back one per file, so a
// command can say which ones it could not use.
func loadTemplates(dir string) (*template.Set, []error, error) {
	set, err := template.Load(os.DirFS(dir), template.Options{})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("no templates folder %s (give --templates DIR)", dir)
	}
	var problems []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		problems = j.Unwrap()
	} else if err != nil {
		problems = []error{err}
	}
	return set, problems, nil
}

// previewTemplates is the set POST /v1/templates/{name}/preview renders:
// the delivery worker's folder. A missing folder is no set (the delivery
// worker warns about it).
func (m *Main) previewTemplates() *template.Set {
	set, _, err := loadTemplates(cmp.Or(m.Delivery.Templates, "templates"))
	if err != nil {
		return nil
	}
	return set
}

func runTemplate(ctx context.Context, what string, args []string, stdout, stderr io.Writer) error {
	if what != "preview" {
		fmt.Fprintln(stderr, "usage: nudge template preview NAME --contact ID [--channel email|sms] [--templates DIR] [--db …] [--json]")
		return errUsage
	}
	var (
		contact, channel, dir string
		price                 float64
		jsonOut               bool
	)
	// The name may come before the flags, as in the usage line.
	name := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	limits, err := smsLimitsFromEnv()
	if err != nil {
		return err
	}
	s, _, fset, err := openFor(ctx, "template preview", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&contact, "contact", "", "the contact's id: the template is rendered with its data and its latest enrollment")
		fs.StringVar(&channel, "channel", "", "email or sms (default: the email template if there is one, else the SMS one)")
		fs.StringVar(&dir, "templates", defaultDeliveryConfig().Templates, "template folder (env NUDGE_TEMPLATES)")
		fs.Float64Var(&price, "sms-price", limits.PricePerSegment, "price per SMS segment, for the cost estimate (env NUDGE_SMS_PRICE)")
		fs.BoolVar(&jsonOut, "json", false, "print the preview as JSON, as the API answers it")
	})
	if err != nil {
		return err
	}
	defer s.Close()
	if name == "" && fset.NArg() > 0 {
		name = fset.Arg(0)
	} else if fset.NArg() > 0 {
		return fmt.Errorf("template preview: unexpected argument %q", fset.Arg(0))
	}
	if name == "" || contact == "" {
		fmt.Fprintln(stderr, "usage: nudge template preview NAME --contact ID [--channel email|sms] [--templates DIR] [--db …] [--json]")
		return errUsage
	}
	limits.PricePerSegment = price

	set, problems, err := loadTemplates(dir)
	if err != nil {
		return err
	}
	// A template left out for a syntax error: say where, not "does not exist".
	var mine []string
	for _, p := range problems {
		for _, suffix := range []string{".email.liquid", ".sms.liquid"} {
			if strings.Contains(p.Error(), name+suffix+":") && (channel == "" || suffix == "."+channel+".liquid") {
				mine = append(mine, nudge.ErrorMessage(p))
			}
		}
	}
	if len(mine) > 0 && !set.Exists(cmp.Or(channel, nudge.ChannelEmail), name) && !set.Exists(cmp.Or(channel, nudge.ChannelSMS), name) {
		return fmt.Errorf("template %s has problems:\n  %s", name, strings.Join(mine, "\n  "))
	}

	p, err := api.PreviewTemplate(ctx, s, set, api.PreviewParams{Name: name, Channel: channel, ContactID: contact, Limits: limits})
	if err != nil {
		if nudge.ErrorCode(err) == nudge.ENOTFOUND && strings.Contains(nudge.ErrorMessage(err), "template") {
			return fmt.Errorf("%s (in %s)", nudge.ErrorMessage(err), dir)
		}
		return errors.New(nudge.ErrorMessage(err))
	}
	if jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(p)
	}
	return writePreview(stdout, p)
}

// writePreview prints a preview for a person: the email's parts, or the
// SMS text and its lint.
func writePreview(w io.Writer, p *api.Preview) error {
	ew := &errWriter{w: w}
	ew.printf("%s template %q for contact %s", p.Channel, p.Template, p.ContactID)
	if p.Journey != nil {
		ew.printf(", journey %s v%d", p.Journey.ID, p.Journey.Version)
		if p.EventName != "" {
			ew.printf(" (event %s)", p.EventName)
		}
	} else {
		ew.printf(" (no enrollment: event and journey are empty)")
	}
	ew.printf("\n\n")
	if p.Channel == nudge.ChannelEmail {
		ew.printf("Subject: %s\n\n── text ──\n%s\n", p.Subject, strings.TrimRight(p.Text, "\n"))
		if p.HTML != "" {
			ew.printf("\n── html ──\n%s\n", strings.TrimRight(p.HTML, "\n"))
		}
		return ew.err
	}
	ew.printf("%s\n\n", p.Text)
	l := p.SMS
	ew.printf("encoding   %s", l.Encoding)
	if l.NotGSM != "" {
		ew.printf(" (because of %q)", l.NotGSM)
	}
	ew.printf("\ncharacters %d\nsegments   %d\n", l.Characters, l.Segments)
	if l.Cost != nil {
		ew.printf("cost       %s per send\n", strconv.FormatFloat(*l.Cost, 'f', -1, 64))
	}
	for _, s := range l.Warnings {
		ew.printf("warning: %s\n", s)
	}
	for _, s := range l.Errors {
		ew.printf("error: %s\n", s)
	}
	if ew.err == nil && len(l.Errors) > 0 {
		return fmt.Errorf("the SMS text cannot be sent as it is")
	}
	return ew.err
}

// errWriter remembers the first write error, so that a run of prints needs
// one check.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

// smsLimits are the preview's SMS lint settings, from the environment.
func (m *Main) smsLimits() template.SMSLimits {
	l, err := smsLimitsFromEnv()
	if err != nil {
		m.Logger.Warn("SMS lint settings ignored", "err", err)
	}
	// A preview counts the opt-out notice a first marketing text gets (the
	// policy in force at start).
	if m.Store != nil {
		if p, err := storedPolicy(m.Store)(context.Background()); err == nil && p.OptOutNotice.When != policy.NoticeNever {
			l.OptOutNotice = p.OptOutNotice.Text
		}
	}
	return l
}
