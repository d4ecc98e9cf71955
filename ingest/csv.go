package ingest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/nudge/nudge"
)

// Import targets besides the contact fields: consent columns, attributes,
// and the column to ignore.
const (
	FieldSMSConsent   = "sms_consent"
	FieldEmailConsent = "email_consent"
	FieldIgnore       = "-"
	AttributePrefix   = "attributes."
)

// mappingFields lists the fixed targets, in the order messages show them.
var mappingFields = []string{
	fieldID, fieldEmail, fieldPhone, fieldTimezone, fieldLifecycleStage,
	fieldJourneyStage, fieldIsCustomer, FieldSMSConsent, FieldEmailConsent,
}

// Mapping maps a CSV header to the contact field its column fills: id,
// email, phone, timezone, lifecycle_stage, journey_stage, is_customer,
// sms_consent, email_consent, attributes.<name>, or "-" to ignore the
// column. Headers are matched exactly, then case-insensitively after
// trimming. Columns the mapping does not name get DefaultField.
type Mapping map[string]string

// checkTarget validates one mapping target.
func checkTarget(header, target string) error {
	if target == FieldIgnore || slices.Contains(mappingFields, target) {
		return nil
	}
	if name, ok := strings.CutPrefix(target, AttributePrefix); ok && strings.TrimSpace(name) != "" {
		return nil
	}
	return nudge.Errorf(nudge.EINVALID, "mapping: column %q maps to unknown field %q; use one of %s, attributes.<name> or - (ignore)",
		truncate(header, 60), truncate(target, 60), strings.Join(mappingFields, ", "))
}

// defaultFields holds the headers CRMs commonly use for the well-known
// fields, in snake_case (see snake).
var defaultFields = map[string]string{}

func init() {
	for field, names := range map[string][]string{
		fieldID:             {"id", "contact_id", "contactid", "user_id", "userid", "external_id", "record_id", "customer_id", "crm_id"},
		fieldEmail:          {"email", "email_address", "emailaddress", "e_mail", "e_mail_address", "work_email"},
		fieldPhone:          {"phone", "phone_number", "phonenumber", "mobile", "mobile_phone", "mobile_number", "mobile_phone_number", "cell", "cell_phone", "cellphone", "sms_number"},
		fieldTimezone:       {"timezone", "time_zone", "tz"},
		fieldLifecycleStage: {"lifecycle_stage", "lifecyclestage", "lifecycle"},
		fieldJourneyStage:   {"journey_stage", "journeystage"},
		fieldIsCustomer:     {"is_customer", "iscustomer"},
		FieldSMSConsent:     {"sms_consent", "sms_opt_in", "sms_optin", "sms_opted_in", "sms_subscription", "sms_subscription_status", "sms_marketing_consent"},
		FieldEmailConsent:   {"email_consent", "email_opt_in", "email_optin", "email_opted_in", "email_subscription", "email_subscription_status", "email_marketing_consent"},
	} {
		for _, n := range names {
			defaultFields[n] = field
		}
	}
}

// DefaultField is the field a column maps to when the mapping does not name
// it: a well-known field for the usual CRM headers ("Contact ID", "External
// ID", "Email Address", "Phone Number", "mobile", "time_zone", "Lifecycle
// Stage"), else an attribute named by the snake_cased header ("Company
// Size" → attributes.company_size). A header with no letters or digits is
// ignored ("-").
func DefaultField(header string) string {
	key := snake(header)
	if f, ok := defaultFields[key]; ok {
		return f
	}
	if key == "" {
		return FieldIgnore
	}
	return AttributePrefix + key
}

// snake turns a header into snake_case: "Company Size", "companySize" and
// "company-size" all become "company_size".
func snake(s string) string {
	var b strings.Builder
	prev := rune(0) // the previous letter or digit written, 0 after a separator
	pending := false
	for _, r := range strings.TrimSpace(s) {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			pending = b.Len() > 0
			prev = 0
			continue
		}
		if unicode.IsUpper(r) && prev != 0 && (unicode.IsLower(prev) || unicode.IsDigit(prev)) {
			pending = true
		}
		if pending {
			b.WriteByte('_')
			pending = false
		}
		b.WriteRune(unicode.ToLower(r))
		prev = r
	}
	return b.String()
}

// LoadMapping reads a mapping file: a JSON object from CSV header to field,
//
//	{"Contact ID": "id", "Mobile": "phone", "Plan": "attributes.plan", "Notes": "-"}
//
// Errors name the line and column in the file.
func LoadMapping(r io.Reader) (Mapping, error) {
	data, err := io.ReadAll(io.LimitReader(r, 1<<20+1))
	if err != nil {
		return nil, fmt.Errorf("mapping: %w", err)
	}
	if len(data) > 1<<20 {
		return nil, nudge.Errorf(nudge.ETOOLARGE, "mapping: the file is over 1 MiB")
	}
	if err := checkTopObject(data); err != nil {
		return nil, prefixMessage("mapping: ", err)
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.Token() // {
	m := Mapping{}
	for d.More() {
		keyAt := d.InputOffset()
		tok, _ := d.Token() // the object is valid: a string key
		key := tok.(string)
		valueAt := d.InputOffset()
		var v any
		if err := d.Decode(&v); err != nil {
			return nil, jsonError(data, err)
		}
		target, ok := v.(string)
		if !ok {
			return nil, nudge.Errorf(nudge.EINVALID, "mapping: at %s: column %q: expected a string, got %s",
				position(data, skipSpace(data, valueAt)), truncate(key, 60), kind(v))
		}
		if _, dup := m[key]; dup {
			return nil, nudge.Errorf(nudge.EINVALID, "mapping: at %s: column %q is mapped twice",
				position(data, skipSpace(data, keyAt)), truncate(key, 60))
		}
		if err := checkTarget(key, target); err != nil {
			return nil, prefixMessage("at "+position(data, skipSpace(data, valueAt))+": ", err)
		}
		m[key] = target
	}
	return m, nil
}

// skipSpace moves an offset past whitespace and the separators the decoder
// has not consumed, to where the next token starts.
func skipSpace(data []byte, off int64) int64 {
	for off < int64(len(data)) {
		switch data[off] {
		case ' ', '\t', '\r', '\n', ',', ':':
			off++
			continue
		}
		break
	}
	return off
}

// prefixMessage returns a copy of a *nudge.Error with its message prefixed
// ("mapping: " for example, or a position after it).
func prefixMessage(prefix string, err error) error {
	var e *nudge.Error
	if !errors.As(err, &e) {
		return err
	}
	c := *e
	if rest, ok := strings.CutPrefix(c.Message, "mapping: "); ok {
		c.Message = "mapping: " + prefix + rest
	} else {
		c.Message = prefix + c.Message
	}
	return &c
}

// RowError is a problem with one row of an import: the row is skipped and the
// import goes on.
type RowError struct {
	Line    int    // where the row starts in the file, from 1
	Column  string // the header of the offending column, if one is
	Message string
}

func (e RowError) Error() string {
	if e.Column != "" {
		return fmt.Sprintf("line %d, column %q: %s", e.Line, e.Column, e.Message)
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Message)
}

// Row is one data row of an import: a patch and its consent changes, or Err.
type Row struct {
	Line    int
	Patch   *nudge.ContactPatch
	Consent []*nudge.ConsentRecordParams
	Err     *RowError
}

// column is what one CSV column fills.
type column struct {
	field string // a mappingFields entry, FieldIgnore, or fieldAttributes
	attr  string // the attribute name when field is fieldAttributes
}

// CSVReader reads contacts from a CRM export, one row at a time: memory use
// does not grow with the file (one record at a time is held).
type CSVReader struct {
	cr       *csv.Reader
	count    *countingReader
	n        *ContactNormalizer
	header   []string
	cols     []column
	idCol    int // -1: the email column is the id
	emailCol int
}

// countingReader counts the bytes read from the source, for progress.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// NewCSVReader reads the header of a CRM export and resolves the mapping of
// its columns: m names some headers (nil: none), DefaultField covers the
// others. A UTF-8 byte order mark and CRLF line ends are handled.
//
// The file needs an id column. Without one, the email column is the id: the
// contact's id is its normalized email address, so an export keyed by email
// imports as is (and imports again onto the same contacts); the id is the
// address lower-cased, so "Jane@Example.com" and "jane@example.com" are one
// contact. Errors, all
// EINVALID *nudge.Error, name the offending header: a mapping entry for a
// header the file lacks, an unknown field, two columns filling one field.
func NewCSVReader(r io.Reader, m Mapping, n *ContactNormalizer) (*CSVReader, error) {
	count := &countingReader{r: r}
	br := bufio.NewReaderSize(count, 64<<10)
	if b, _ := br.Peek(len(utf8BOM)); bytes.Equal(b, utf8BOM) {
		br.Discard(len(utf8BOM))
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	rec, err := cr.Read()
	if err == io.EOF {
		return nil, nudge.Errorf(nudge.EINVALID, "the file is empty: the first line must be a header")
	}
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, nudge.Errorf(nudge.EINVALID, "header, %s", parseErrorMessage(pe))
		}
		return nil, fmt.Errorf("csv header: %w", err)
	}
	cr.ReuseRecord = true
	header := slices.Clone(rec)
	c := &CSVReader{cr: cr, count: count, n: n, header: header, idCol: -1, emailCol: -1}
	if err := c.resolve(m); err != nil {
		return nil, err
	}
	return c, nil
}

// resolve maps every column and checks the result.
func (c *CSVReader) resolve(m Mapping) error {
	exact := make(map[string]bool, len(c.header))
	for _, h := range c.header {
		exact[h] = true
	}
	// A key that names a header exactly is not also matched by case.
	folded := make(map[string]string, len(m)) // folded header → mapping key
	for k := range m {
		if exact[k] {
			continue
		}
		fk := strings.ToLower(strings.TrimSpace(k))
		if prev, ok := folded[fk]; !ok || k < prev { // deterministic on collisions
			folded[fk] = k
		}
	}
	used := make(map[string]bool, len(m))
	byField := map[string]int{} // field or attributes.name → column
	c.cols = make([]column, len(c.header))
	for i, h := range c.header {
		target, ok := m[h]
		key := h
		if !ok {
			key, ok = folded[strings.ToLower(strings.TrimSpace(h))]
			target = m[key]
		}
		if ok {
			used[key] = true
			if err := checkTarget(h, target); err != nil {
				return err
			}
		} else {
			target = DefaultField(h)
		}
		if target == FieldIgnore {
			c.cols[i] = column{field: FieldIgnore}
			continue
		}
		if j, dup := byField[target]; dup {
			return nudge.Errorf(nudge.EINVALID, "mapping: columns %q and %q both map to %s; map one of them to \"-\"",
				truncate(c.header[j], 60), truncate(h, 60), target)
		}
		byField[target] = i
		if name, ok := strings.CutPrefix(target, AttributePrefix); ok {
			c.cols[i] = column{field: fieldAttributes, attr: strings.TrimSpace(name)}
			continue
		}
		c.cols[i] = column{field: target}
		switch target {
		case fieldID:
			c.idCol = i
		case fieldEmail:
			c.emailCol = i
		}
	}
	var missing []string
	for k := range m {
		if !used[k] {
			missing = append(missing, strconv.Quote(k))
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nudge.Errorf(nudge.EINVALID, "mapping: the header has no column %s", strings.Join(missing, ", "))
	}
	if c.idCol < 0 && c.emailCol < 0 {
		return nudge.Errorf(nudge.EINVALID, "no id column: map a column to id (or to email, which then serves as the id)")
	}
	return nil
}

// Header returns the file's header, as written.
func (c *CSVReader) Header() []string { return slices.Clone(c.header) }

// Mapping returns the resolved mapping of every column, defaults included,
// for showing what an import will do.
func (c *CSVReader) Mapping() Mapping {
	m := make(Mapping, len(c.header))
	for i, h := range c.header {
		switch col := c.cols[i]; col.field {
		case fieldAttributes:
			m[h] = AttributePrefix + col.attr
		default:
			m[h] = col.field
		}
	}
	return m
}

// BytesRead returns how many bytes have been read from the source so far
// (read-ahead included), for a progress bar.
func (c *CSVReader) BytesRead() int64 { return c.count.n }

// Next returns the next data row, io.EOF after the last one, or an error
// reading the source. A row that cannot be imported comes back with Err set
// and the reader goes on with the next one; Line is where the row starts,
// even when quoted fields span lines.
func (c *CSVReader) Next() (Row, error) {
	rec, err := c.cr.Read()
	if err == io.EOF {
		return Row{}, io.EOF
	}
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return Row{Line: pe.StartLine, Err: &RowError{Line: pe.StartLine, Message: parseErrorMessage(pe)}}, nil
		}
		return Row{}, fmt.Errorf("csv: %w", err)
	}
	line, _ := c.cr.FieldPos(0)
	row := Row{Line: line}
	fail := func(col int, msg string) (Row, error) {
		e := &RowError{Line: line, Message: msg}
		if col >= 0 {
			e.Column = c.header[col]
		}
		return Row{Line: line, Err: e}, nil
	}
	if len(rec) != len(c.header) {
		return fail(-1, fmt.Sprintf("%d columns, the header has %d", len(rec), len(c.header)))
	}

	var id string
	if c.idCol >= 0 {
		id = strings.TrimSpace(rec[c.idCol])
		if err := checkID(id); err != nil {
			return fail(c.idCol, errorMessage(err))
		}
	} else {
		email, err := c.n.Email(rec[c.emailCol])
		if err != nil {
			return fail(c.emailCol, errorMessage(err))
		}
		if email == "" {
			return fail(c.emailCol, "required: the file has no id column, so the email address is the contact id")
		}
		id = strings.ToLower(email) // one contact however the export capitalizes it
		if err := checkID(id); err != nil {
			return fail(c.emailCol, errorMessage(err))
		}
	}

	p := &nudge.ContactPatch{ID: id}
	for i, col := range c.cols {
		v := strings.TrimSpace(rec[i])
		if v == "" || col.field == FieldIgnore || i == c.idCol {
			continue // an empty cell leaves the field as it is
		}
		var err error
		switch col.field {
		case fieldEmail:
			err = setString(&p.Email, v, c.n.Email)
		case fieldPhone:
			err = setString(&p.Phone, v, c.n.Phone)
		case fieldTimezone:
			err = setString(&p.Timezone, v, c.n.Timezone)
		case fieldLifecycleStage:
			s := normalizeStage(v)
			p.LifecycleStage = &s
		case fieldJourneyStage:
			p.JourneyStage = &v
		case fieldIsCustomer:
			b, ok := parseBool(v)
			if !ok {
				return fail(i, fmt.Sprintf("%q is not a yes/no value (use true or false)", truncate(v, 40)))
			}
			p.IsCustomer = &b
		case FieldSMSConsent, FieldEmailConsent:
			status, ok := parseConsent(v)
			if !ok {
				return fail(i, fmt.Sprintf("%q is not a consent value (use opted_in, opted_out or unknown)", truncate(v, 40)))
			}
			ch := nudge.ChannelSMS
			if col.field == FieldEmailConsent {
				ch = nudge.ChannelEmail
			}
			row.Consent = append(row.Consent, &nudge.ConsentRecordParams{
				ContactID: id, Channel: ch, Purpose: nudge.PurposeMarketing,
				Status: status, Source: nudge.SourceImport,
			})
		case fieldAttributes:
			if p.Attributes == nil {
				p.Attributes = map[string]any{}
			}
			p.Attributes[col.attr] = v
		}
		if err != nil {
			return fail(i, errorMessage(err))
		}
	}
	row.Patch = p
	return row, nil
}

// setString sets *dst to the normalized value.
func setString(dst **string, v string, norm func(string) (string, error)) error {
	s, err := norm(v)
	if err != nil {
		return err
	}
	*dst = &s
	return nil
}

// errorMessage is the message of an error without its field.
func errorMessage(err error) string {
	var e *nudge.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}

// parseErrorMessage describes a CSV syntax error; the line is the record's.
func parseErrorMessage(pe *csv.ParseError) string {
	if pe.Line != pe.StartLine {
		return fmt.Sprintf("%v (at line %d, character %d)", pe.Err, pe.Line, pe.Column)
	}
	return fmt.Sprintf("%v (character %d)", pe.Err, pe.Column)
}

// parseConsent reads the consent spellings CRMs export.
func parseConsent(s string) (string, bool) {
	key := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-':
			return '_'
		}
		return unicode.ToLower(r)
	}, strings.TrimSpace(s))
	switch key {
	case "opted_in", "optedin", "opt_in", "optin", "in", "yes", "y", "true", "t", "1",
		"subscribed", "granted", "consented":
		return nudge.ConsentOptedIn, true
	case "opted_out", "optedout", "opt_out", "optout", "out", "no", "n", "false", "f", "0",
		"unsubscribed", "revoked", "withdrawn":
		return nudge.ConsentOptedOut, true
	case "unknown":
		return nudge.ConsentUnknown, true
	}
	return "", false
}

// ImportOptions configure Import.
type ImportOptions struct {
	// BatchSize is how many rows go to the store in one ContactMerge and
	// one ConsentRecord; default 1000.
	BatchSize int
	// MaxErrors is how many row errors the summary keeps; default 100,
	// negative: none. OnError sees all of them.
	MaxErrors int
	// Now is the time each batch is written at; required (Import never
	// reads the wall clock).
	Now func() time.Time
	// OnError, if set, is called for every row error, in file order.
	OnError func(RowError)
	// OnProgress, if set, is called after each batch with the rows done so
	// far and the bytes read.
	OnProgress func(rows int, bytesRead int64)
}

// ImportSummary counts what an import did.
type ImportSummary struct {
	Rows            int        // data rows read
	Imported        int        // contacts created
	Updated         int        // existing contacts updated
	Rejected        int        // rows skipped for an error
	ConsentRecorded int        // consent changes recorded
	ConsentRejected int        // consent changes the store refused
	Errors          []RowError // the first MaxErrors errors, rows and consent both
}

// Import reads every row of r into s, in batches: each batch is one
// ContactMerge, then one ConsentRecord for its consent columns (after the
// merge, so the contacts and their addresses exist). A bad row is counted,
// reported and skipped; a consent change the store refuses is counted and
// reported against its row and column. An error of the store or of the
// source stops the import: it is returned, wrapped with the lines of the
// batch, along with the summary of the batches written before it.
func Import(ctx context.Context, s nudge.Store, r *CSVReader, opt ImportOptions) (*ImportSummary, error) {
	if opt.Now == nil {
		return nil, errors.New("ingest.Import: ImportOptions.Now is required")
	}
	batchSize := opt.BatchSize
	if batchSize <= 0 {
		batchSize = 1000
	}
	maxErrors := opt.MaxErrors
	switch {
	case maxErrors == 0:
		maxErrors = 100
	case maxErrors < 0:
		maxErrors = 0
	}
	sum := &ImportSummary{}

	report := func(e RowError) {
		if len(sum.Errors) < maxErrors {
			sum.Errors = append(sum.Errors, e)
		}
		if opt.OnError != nil {
			opt.OnError(e)
		}
	}

	type where struct {
		line   int
		column string
	}
	patches := make([]*nudge.ContactPatch, 0, batchSize)
	var consents []*nudge.ConsentRecordParams
	var consentAt []where
	firstLine, lastLine := 0, 0
	consentColumn := map[string]string{} // channel → header, for consent errors
	for i, col := range r.cols {
		switch col.field {
		case FieldSMSConsent:
			consentColumn[nudge.ChannelSMS] = r.header[i]
		case FieldEmailConsent:
			consentColumn[nudge.ChannelEmail] = r.header[i]
		}
	}

	flush := func() error {
		if len(patches) > 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("import lines %d-%d: %w", firstLine, lastLine, err)
			}
			now := opt.Now()
			res, err := s.ContactMerge(ctx, patches, now)
			if err != nil {
				return fmt.Errorf("import lines %d-%d: %w", firstLine, lastLine, err)
			}
			for _, x := range res {
				if x.Created {
					sum.Imported++
				} else {
					sum.Updated++
				}
			}
			if len(consents) > 0 {
				cres, err := s.ConsentRecord(ctx, consents, now)
				if err != nil {
					return fmt.Errorf("import lines %d-%d: consent: %w", firstLine, lastLine, err)
				}
				for i, x := range cres {
					if x.Err == nil {
						sum.ConsentRecorded++
						continue
					}
					sum.ConsentRejected++
					if i < len(consentAt) {
						report(RowError{Line: consentAt[i].line, Column: consentAt[i].column, Message: errorMessage(x.Err)})
					}
				}
			}
		}
		clear(patches) // drop references: nothing outlives its batch
		patches = patches[:0]
		clear(consents)
		consents = consents[:0]
		consentAt = consentAt[:0]
		firstLine = 0
		if opt.OnProgress != nil {
			opt.OnProgress(sum.Rows, r.BytesRead())
		}
		return nil
	}

	for {
		row, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return sum, fmt.Errorf("import after line %d: %w", lastLine, err)
		}
		sum.Rows++
		if row.Err != nil {
			sum.Rejected++
			report(*row.Err)
			continue
		}
		if firstLine == 0 {
			firstLine = row.Line
		}
		lastLine = row.Line
		patches = append(patches, row.Patch)
		for _, cp := range row.Consent {
			consents = append(consents, cp)
			consentAt = append(consentAt, where{row.Line, consentColumn[cp.Channel]})
		}
		if len(patches) >= batchSize {
			if err := flush(); err != nil {
				return sum, err
			}
		}
	}
	if len(patches) > 0 || opt.OnProgress != nil {
		if err := flush(); err != nil {
			return sum, err
		}
	}
	return sum, nil
}
