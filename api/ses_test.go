package api_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/api"
	"github.com/nudge/nudge/nudgetest"
)

const (
	sesPath  = "/v1/webhooks/ses"
	sesTopic = "arn:aws:sns:us-east-1:123456789012:nudge-ses-events"
	snsHost  = "sns.us-east-1.amazonaws.com"
	certPath = "/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem"
)

// fakeSNS is Amazon SNS as Nudge sees it: an https server on
// sns.us-east-1.amazonaws.com (reached through a dialer that sends that
// name to loopback, with a test CA) that serves the signing certificate and
// the subscribe URL, and a key that signs messages as SNS does.
type fakeSNS struct {
	key        *rsa.PrivateKey
	client     *http.Client
	confirmed  atomic.Int32
	certServed atomic.Int32
}

func newFakeSNS(t *testing.T) *fakeSNS {
	t.Helper()
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Root CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leaf := func(key *rsa.PrivateKey, serial int64, names ...string) []byte {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "sns.amazonaws.com"},
			DNSNames: names, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	f := &fakeSNS{}
	if f.key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	signingPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf(f.key, 2)})
	tlsKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == certPath:
			f.certServed.Add(1)
			w.Write(signingPEM)
		case r.URL.Query().Get("Action") == "ConfirmSubscription" && r.URL.Query().Get("Token") == "tok-123":
			f.confirmed.Add(1)
			w.Write([]byte(`<ConfirmSubscriptionResponse><ConfirmSubscriptionResult><SubscriptionArn>` + sesTopic + `:1</SubscriptionArn></ConfirmSubscriptionResult></ConfirmSubscriptionResponse>`))
		default:
			http.NotFound(w, r)
		}
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leaf(tlsKey, 3, snsHost)}, PrivateKey: tlsKey}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	addr := srv.Listener.Addr().String()
	f.client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, hostport string) (net.Conn, error) {
			if hostport != snsHost+":443" {
				return nil, &net.OpError{Op: "dial", Net: network, Err: errUnknownHost}
			}
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}}
	return f
}

var errUnknownHost = &net.DNSError{Err: "no such host (test)", IsNotFound: true}

// message returns an SNS envelope of typ, signed with version (1 or 2)
// exactly as SNS signs it, after edit changed its fields (nil: none);
// tamper changes them after signing.
func (f *fakeSNS) message(t *testing.T, typ, id, msg string, version int, edit func(map[string]string), tamper ...func(map[string]string)) []byte {
	t.Helper()
	m := map[string]string{
		"Type": typ, "MessageId": id, "TopicArn": sesTopic, "Message": msg, "Timestamp": "2026-03-02T09:00:00.000Z",
		"SignatureVersion": map[int]string{1: "1", 2: "2"}[version], "SigningCertURL": "https://" + snsHost + certPath,
	}
	keys := []string{"Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"}
	if typ != "Notification" {
		m["Token"] = "tok-123"
		m["SubscribeURL"] = "https://" + snsHost + "/?Action=ConfirmSubscription&TopicArn=" + sesTopic + "&Token=tok-123"
		keys = []string{"Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"}
	} else {
		m["UnsubscribeURL"] = "https://" + snsHost + "/?Action=Unsubscribe&SubscriptionArn=" + sesTopic + ":1"
	}
	if edit != nil {
		edit(m)
	}
	var b strings.Builder
	for _, k := range keys {
		if v, ok := m[k]; ok {
			b.WriteString(k + "\n" + v + "\n")
		}
	}
	var sig []byte
	var err error
	if version == 1 {
		d := sha1.Sum([]byte(b.String()))
		sig, err = rsa.SignPKCS1v15(rand.Reader, f.key, crypto.SHA1, d[:])
	} else {
		d := sha256.Sum256([]byte(b.String()))
		sig, err = rsa.SignPKCS1v15(rand.Reader, f.key, crypto.SHA256, d[:])
	}
	if err != nil {
		t.Fatal(err)
	}
	m["Signature"] = base64.StdEncoding.EncodeToString(sig)
	for _, f := range tamper {
		f(m)
	}
	body, _ := json.Marshal(m)
	return body
}

func (e *env) ses(body []byte) *response {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.srv.URL+sesPath, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "text/plain; charset=UTF-8") // as SNS sends it
	req.Header.Set("x-amz-sns-message-type", "Notification")
	return e.send(req)
}

// sesNotice is an SES notification of e1 (its Message-ID in the original
// headers, as SES keeps them) with the given type and part.
func sesNotice(typ, part string) string {
	mail := `"mail":{"timestamp":"2026-03-02T09:00:00.000Z","source":"news@mail.example.com",` +
		`"messageId":"0100018e0c3b1f7a-6f1c2b2e-1d6e-4c39-9a55-2b1d6b1a9f1e-000000","destination":["` + janeEmail + `"],` +
		`"headersTruncated":false,"headers":[{"name":"Message-ID","value":"<` + e1ProviderID + `>"}],` +
		`"commonHeaders":{"from":["news@mail.example.com"],"to":["` + janeEmail + `"],"messageId":"<` + e1ProviderID + `>","subject":"Webinar"}}`
	return `{"notificationType":"` + typ + `",` + part + `,` + mail + `}`
}

func newSESEnv(t *testing.T, open opener) (*env, *fakeSNS) {
	t.Helper()
	f := newFakeSNS(t)
	e := newEnvWith(t, open(t), func(c *api.Config) {
		c.SESTopicARNs = []string{sesTopic}
		c.SNSClient = f.client
	})
	seedEmail(t, e)
	return e, f
}

func TestSESSignature(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		e, f := newSESEnv(t, open)
		delivery := sesNotice("Delivery", `"delivery":{"timestamp":"2026-03-02T09:00:01.000Z","recipients":["`+janeEmail+`"],"smtpResponse":"250 ok"}`)
		tampered := f.message(t, "Notification", "sns-bad-tampered", delivery, 2, nil,
			func(m map[string]string) { m["Message"] = strings.Replace(m["Message"], "250 ok", "250 OK", 1) })
		unsigned := f.message(t, "Notification", "sns-bad-unsigned", delivery, 2, nil, func(m map[string]string) { m["Signature"] = "" })
		for name, body := range map[string][]byte{"tampered message": tampered, "signature missing": unsigned} {
			if r := e.ses(body); r.status != 403 {
				t.Errorf("%s: status %d, want 403: %s", name, r.status, r.body)
			}
		}
		for name, tc := range map[string]struct {
			edit func(map[string]string)
			want int
		}{
			"other topic":    {func(m map[string]string) { m["TopicArn"] = "arn:aws:sns:us-east-1:999999999999:theirs" }, 403},
			"cert over http": {func(m map[string]string) { m["SigningCertURL"] = "http://" + snsHost + certPath }, 403},
			"cert elsewhere": {func(m map[string]string) {
				m["SigningCertURL"] = "https://sns.us-east-1.amazonaws.com.evil.example" + certPath
			}, 403},
			"cert not pem": {func(m map[string]string) { m["SigningCertURL"] = "https://" + snsHost + "/cert.txt" }, 403},
			"version 3":    {func(m map[string]string) { m["SignatureVersion"] = "3" }, 403},
		} {
			t.Run(name, func(t *testing.T) {
				if r := e.ses(f.message(t, "Notification", "sns-bad-"+name, delivery, 2, tc.edit)); r.status != tc.want {
					t.Errorf("status %d, want %d: %s", r.status, tc.want, r.body)
				}
			})
		}
		if got := e.history("e1"); !equal(got, []string{"queued", "sending", "sent"}) {
			t.Errorf("a refused message changed e1: %v", got)
		}
		// Both signature versions are accepted; the certificate is fetched once.
		for v := 1; v <= 2; v++ {
			// Two deliveries of e1 (SNS message ids differ): the second finds it delivered.
			r := e.must(e.ses(f.message(t, "Notification", "sns-ok-"+string(rune('0'+v)), delivery, v, nil)), 200)
			if got := outcomes(r); !equal(got, []string{"applied"}) {
				t.Errorf("version %d: outcomes %v (%s)", v, got, r.body)
			}
		}
		if got := e.history("e1"); !equal(got, []string{"queued", "sending", "sent", "delivered"}) {
			t.Errorf("history %v; want delivered", got)
		}
		if n := f.certServed.Load(); n != 1 {
			t.Errorf("certificate fetched %d times; want once", n)
		}
	})
}

func TestSESSubscriptionConfirmation(t *testing.T) {
	e, f := newSESEnv(t, func(t testing.TB) nudge.Store { return nudgetest.SQLite(t) })
	msg := "You have chosen to subscribe to the topic " + sesTopic + ".\nTo confirm the subscription, visit the SubscribeURL included in this message."
	e.must(e.ses(f.message(t, "SubscriptionConfirmation", "sns-sub-1", msg, 1, nil)), 200)
	if n := f.confirmed.Load(); n != 1 {
		t.Errorf("subscription confirmed %d times; want once", n)
	}
	// A subscribe URL that is not SNS's is not fetched.
	r := e.ses(f.message(t, "SubscriptionConfirmation", "sns-sub-2", msg, 2, func(m map[string]string) {
		m["SubscribeURL"] = "https://attacker.example.com/?Token=tok-123"
	}))
	if r.status != 403 || f.confirmed.Load() != 1 {
		t.Errorf("foreign SubscribeURL: status %d, confirmations %d; want 403, still 1", r.status, f.confirmed.Load())
	}
}

func TestSESEvents(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		t.Run("permanent bounce suppresses", func(t *testing.T) {
			e, f := newSESEnv(t, open)
			bounce := sesNotice("Bounce", `"bounce":{"bounceType":"Permanent","bounceSubType":"General","bouncedRecipients":[{"emailAddress":"`+
				janeEmail+`","action":"failed","status":"5.1.1","diagnosticCode":"smtp; 550 5.1.1 user unknown"}],"timestamp":"2026-03-02T09:00:02.000Z","feedbackId":"fb-1"}`)
			body := f.message(t, "Notification", "sns-b1", bounce, 2, nil)
			e.must(e.ses(body), 200)
			r := e.must(e.ses(body), 200) // SNS retries: stored once
			if got := outcomes(r); !equal(got, []string{"duplicate"}) {
				t.Errorf("retry outcomes %v", got)
			}
			if got := e.history("e1"); !equal(got, []string{"queued", "sending", "sent", "failed"}) {
				t.Errorf("history: %v", got)
			}
			if got := e.emailSuppressions("jane"); !equal(got, []string{nudge.SuppressHardBounce}) {
				t.Errorf("suppressions: %v", got)
			}
			if len(e.emailEvents("jane", "email.bounced")) != 1 {
				t.Error("no email.bounced event")
			}
		})
		t.Run("transient bounce", func(t *testing.T) {
			e, f := newSESEnv(t, open)
			bounce := sesNotice("Bounce", `"bounce":{"bounceType":"Transient","bounceSubType":"MailboxFull","bouncedRecipients":[{"emailAddress":"`+
				janeEmail+`"}],"timestamp":"2026-03-02T09:00:02.000Z"}`)
			e.must(e.ses(f.message(t, "Notification", "sns-b2", bounce, 1, nil)), 200)
			if got := e.history("e1"); !equal(got, []string{"queued", "sending", "sent", "undelivered"}) {
				t.Errorf("history: %v", got)
			}
			if got := e.emailSuppressions("jane"); len(got) != 0 {
				t.Errorf("a transient bounce suppressed the address: %v", got)
			}
		})
		t.Run("complaint suppresses and opts out", func(t *testing.T) {
			e, f := newSESEnv(t, open)
			complaint := sesNotice("Complaint", `"complaint":{"complainedRecipients":[{"emailAddress":"`+janeEmail+
				`"}],"timestamp":"2026-03-02T09:05:00.000Z","feedbackId":"fb-2","complaintFeedbackType":"abuse"}`)
			e.must(e.ses(f.message(t, "Notification", "sns-c1", complaint, 2, nil)), 200)
			if got := e.emailSuppressions("jane"); !equal(got, []string{nudge.SuppressComplaint}) {
				t.Errorf("suppressions: %v", got)
			}
			if st := e.emailConsent("jane"); st == nil || st.Status != nudge.ConsentOptedOut {
				t.Errorf("consent %+v; want opted_out", st)
			}
		})
		t.Run("open and click from event publishing", func(t *testing.T) {
			e, f := newSESEnv(t, open)
			openEv := strings.Replace(sesNotice("", `"open":{"timestamp":"2026-03-02T10:00:00.000Z","userAgent":"Mozilla/5.0","ipAddress":"203.0.113.7"}`),
				`"notificationType":""`, `"eventType":"Open"`, 1)
			click := strings.Replace(sesNotice("", `"click":{"timestamp":"2026-03-02T10:01:00.000Z","link":"https://example.com/webinar","linkTags":{}}`),
				`"notificationType":""`, `"eventType":"Click"`, 1)
			send := strings.Replace(sesNotice("", `"send":{}`), `"notificationType":""`, `"eventType":"Send"`, 1)
			for i, m := range []string{openEv, click, send} {
				r := e.must(e.ses(f.message(t, "Notification", "sns-o"+string(rune('0'+i)), m, 2, nil)), 200)
				want := []string{"applied"}
				if i == 2 {
					want = []string{"ignored"}
				}
				if got := outcomes(r); !equal(got, want) {
					t.Errorf("event %d: outcomes %v, want %v (%s)", i, got, want, r.body)
				}
			}
			if len(e.emailEvents("jane", "email.opened")) != 1 || len(e.emailEvents("jane", "email.clicked")) != 1 {
				t.Error("want one email.opened and one email.clicked event")
			}
		})
		t.Run("malformed SES message", func(t *testing.T) {
			e, f := newSESEnv(t, open)
			r := e.must(e.ses(f.message(t, "Notification", "sns-m1", `{"notificationType":"Bounce","mail":{}}`, 2, nil)), 200)
			if got := outcomes(r); !equal(got, []string{"error"}) {
				t.Errorf("outcomes %v; want error (reported, not retried)", got)
			}
		})
	})
}

func TestSESNotConfigured(t *testing.T) {
	e := newEnvWith(t, nudgetest.SQLite(t))
	if r := e.ses([]byte(`{}`)); r.status != 404 {
		t.Errorf("status %d, want 404", r.status)
	}
}
