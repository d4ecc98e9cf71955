package twilio_test

import (
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nudge/nudge"
	"github.com/nudge/nudge/channel/twilio"
)

// Twilio's published example.
var (
	exampleURL    = "https://mycompany.com/myapp.php?foo=1&bar=2"
	exampleToken  = "12345"
	exampleParams = url.Values{
		"CallSid": {"CA1234567890ABCDE"},
		"Caller":  {"+14158675309"},
		"Digits":  {"1234"},
		"From":    {"+14158675309"},
		"To":      {"+18005551212"},
	}
	exampleSignature = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
)

func TestSignPublishedExample(t *testing.T) {
	if got := twilio.Sign(exampleToken, exampleURL, exampleParams); got != exampleSignature {
		t.Errorf("Sign = %q, want %q", got, exampleSignature)
	}
}

func TestValidateSignature(t *testing.T) {
	tampered := url.Values{}
	for k, v := range exampleParams {
		tampered[k] = v
	}
	tampered.Set("Digits", "9999")
	withPort := twilio.Sign(exampleToken, "https://mycompany.com:443/myapp.php?foo=1&bar=2", exampleParams)
	tests := []struct {
		name   string
		token  string
		url    string
		params url.Values
		sig    string
		want   bool
	}{
		{"published example", exampleToken, exampleURL, exampleParams, exampleSignature, true},
		{"request URL has :443, Twilio signed without", exampleToken, "https://mycompany.com:443/myapp.php?foo=1&bar=2", exampleParams, exampleSignature, true},
		{"Twilio signed with :443", exampleToken, exampleURL, exampleParams, withPort, true},
		{"http with :80", "t", "http://example.com:80/hook", nil, twilio.Sign("t", "http://example.com/hook", nil), true},
		{"other port is not the same URL", exampleToken, "https://mycompany.com:8443/myapp.php?foo=1&bar=2", exampleParams, exampleSignature, false},
		{"wrong token", "54321", exampleURL, exampleParams, exampleSignature, false},
		{"tampered parameter", exampleToken, exampleURL, tampered, exampleSignature, false},
		{"tampered query", exampleToken, "https://mycompany.com/myapp.php?foo=2&bar=2", exampleParams, exampleSignature, false},
		{"extra parameter", exampleToken, exampleURL, url.Values{"CallSid": {"CA1234567890ABCDE"}}, exampleSignature, false},
		{"empty signature", exampleToken, exampleURL, exampleParams, "", false},
		{"garbage signature", exampleToken, exampleURL, exampleParams, "not base64!", false},
		{"empty token", "", exampleURL, exampleParams, exampleSignature, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := twilio.ValidateSignature(tt.token, tt.url, tt.params, tt.sig); got != tt.want {
				t.Errorf("ValidateSignature = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseStatusCallback(t *testing.T) {
	tests := []struct {
		name    string
		form    url.Values
		want    *twilio.StatusCallback
		wantErr string // field
	}{
		{
			name: "delivered",
			form: url.Values{"MessageSid": {"SM1"}, "MessageStatus": {"delivered"}, "To": {"+14155550100"}, "From": {"+15005550006"}, "AccountSid": {"AC1"}, "ErrorCode": {""}},
			want: &twilio.StatusCallback{MessageSID: "SM1", Status: "delivered", To: "+14155550100", From: "+15005550006", AccountSID: "AC1"},
		},
		{
			name: "undelivered with a code",
			form: url.Values{"MessageSid": {"SM2"}, "MessageStatus": {"undelivered"}, "ErrorCode": {"30003"}},
			want: &twilio.StatusCallback{MessageSID: "SM2", Status: "undelivered", ErrorCode: "30003"},
		},
		{"no sid", url.Values{"MessageStatus": {"sent"}}, nil, "MessageSid"},
		{"no status", url.Values{"MessageSid": {"SM3"}}, nil, "MessageStatus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := twilio.ParseStatusCallback(tt.form)
			checkParse(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func TestParseInbound(t *testing.T) {
	tests := []struct {
		name    string
		form    url.Values
		want    *twilio.Inbound
		wantErr string
	}{
		{
			name: "stop",
			form: url.Values{"MessageSid": {"SM9"}, "AccountSid": {"AC1"}, "MessagingServiceSid": {"MG1"}, "From": {"+14155550100"}, "To": {"+15005550006"},
				"Body": {"STOP"}, "NumMedia": {"0"}, "NumSegments": {"1"}, "OptOutType": {"STOP"}},
			want: &twilio.Inbound{MessageSID: "SM9", AccountSID: "AC1", MessagingServiceSID: "MG1", From: "+14155550100", To: "+15005550006",
				Body: "STOP", NumSegments: 1, OptOutType: "STOP"},
		},
		{
			name: "reply with emoji and media",
			form: url.Values{"MessageSid": {"SM8"}, "From": {"+14155550100"}, "To": {"+15005550006"}, "Body": {"yes please 👍"}, "NumMedia": {"2"}},
			want: &twilio.Inbound{MessageSID: "SM8", From: "+14155550100", To: "+15005550006", Body: "yes please 👍", NumMedia: 2},
		},
		{"no sid", url.Values{"From": {"+14155550100"}}, nil, "MessageSid"},
		{"no from", url.Values{"MessageSid": {"SM7"}}, nil, "From"},
		{"bad count", url.Values{"MessageSid": {"SM7"}, "From": {"+1"}, "NumMedia": {"many"}}, nil, "NumMedia"},
		{"negative count", url.Values{"MessageSid": {"SM7"}, "From": {"+1"}, "NumSegments": {"-1"}}, nil, "NumSegments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := twilio.ParseInbound(tt.form)
			checkParse(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func checkParse[T any](t *testing.T, got *T, err error, want *T, wantField string) {
	t.Helper()
	if wantField != "" {
		e, ok := err.(*nudge.Error)
		if !ok || e.Code != nudge.EINVALID || e.Field != wantField {
			t.Fatalf("err = %#v, want EINVALID on %s", err, wantField)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func FuzzParseInbound(f *testing.F) {
	f.Add("MessageSid=SM1&From=%2B14155550100&To=%2B15005550006&Body=STOP&NumMedia=0&NumSegments=1&OptOutType=STOP")
	f.Add("MessageSid=SM1&From=x&NumMedia=-3")
	f.Add("MessageSid=SM1&MessageStatus=delivered&ErrorCode=30003")
	f.Fuzz(func(t *testing.T, raw string) {
		form, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		if in, err := twilio.ParseInbound(form); err == nil && (in.MessageSID == "" || in.From == "" || in.NumMedia < 0 || in.NumSegments < 0) {
			t.Errorf("ParseInbound accepted %+v", in)
		}
		if c, err := twilio.ParseStatusCallback(form); err == nil && (c.MessageSID == "" || c.Status == "") {
			t.Errorf("ParseStatusCallback accepted %+v", c)
		}
	})
}

func FuzzValidateSignature(f *testing.F) {
	f.Add(exampleURL, "Digits=1234", exampleSignature)
	f.Add("https://h:443/p", "", "")
	f.Add("http://[::1]:80/p?x=1", "a=1&a=2", "abc=")
	f.Fuzz(func(t *testing.T, rawURL, rawForm, sig string) {
		form, err := url.ParseQuery(rawForm)
		if err != nil {
			return
		}
		_ = twilio.ValidateSignature("token", rawURL, form, sig)
		if !twilio.ValidateSignature("token", rawURL, form, twilio.Sign("token", rawURL, form)) {
			t.Errorf("own signature rejected for %q %q", rawURL, rawForm)
		}
	})
}
