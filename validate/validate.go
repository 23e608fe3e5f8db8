// Package validate reads and checks what clients send, for every HTTP
// surface: strict JSON bodies, field checks that collect every error at
// once, the limits on everything, and cursor paging. Its answers are
// httperr.Errors, which each surface renders in its own shape.
package validate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/orbt/orbt/httperr"
	"github.com/orbt/orbt/ledger"
)

// Limits on what a client may send.
const (
	BodyBytesMax        = 1 << 20 // 1 MiB
	AmountMax           = 1_000_000_000_000
	ReferenceIDLenMax   = 255
	IDLenMax            = 64
	NameLenMax          = 200
	DescriptionLenMax   = 500
	EmailLenMax         = 254
	URLLenMax           = 2048
	MetadataKeysMax     = 50
	MetadataKeyLenMax   = 40
	MetadataValueLenMax = 500
	BrandsMax           = 100
)

// DecodeJSON reads a JSON object of at most limit bytes strictly, so that
// one body means one thing to every reader of it: member names match
// exactly (not "AMOUNT" for amount), a name given twice, an unknown member,
// a wrong type, invalid UTF-8, trailing data and an oversized body are 4xx
// errors naming the field (items[3].amount). It decodes with the JSON v2
// prototype (github.com/go-json-experiment/json), whose defaults are these
// rules; encoding/json matches names case-insensitively and keeps the last
// of two.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any, limit int64) *httperr.Error {
	body, e := ReadBody(w, r, limit)
	if e != nil {
		return e
	}
	return DecodeBody(body, v)
}

// ReadBody reads a request's body of at most limit bytes: 413 past it,
// 400 when the client stops sending.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *httperr.Error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if e := TooLarge(err); e != nil {
		return nil, e
	}
	if err != nil {
		return nil, httperr.New(http.StatusBadRequest, "invalid_json", "The body could not be read to its end.")
	}
	return body, nil
}

// DecodeBody is DecodeJSON for a body already read (one a signature
// covers, say).
func DecodeBody(body []byte, v any) *httperr.Error {
	if len(bytes.TrimSpace(body)) == 0 {
		return httperr.New(http.StatusBadRequest, "invalid_json", "The body is empty; a JSON object is required.")
	}
	err := jsonv2.Unmarshal(body, v, jsonv2.RejectUnknownMembers(true))
	if err == nil {
		return nil
	}
	var (
		syntaxErr   *jsontext.SyntacticError
		semanticErr *jsonv2.SemanticError
	)
	switch {
	case errors.As(err, &syntaxErr) && errors.Is(err, jsontext.ErrDuplicateName):
		return httperr.Validation(httperr.FieldError{Field: fieldOf(syntaxErr.JSONPointer, v), Message: "is given more than once"})
	case errors.As(err, &syntaxErr) && syntaxErr.JSONPointer != "":
		// Inside a value: invalid UTF-8, a lone surrogate, a bad escape.
		return httperr.Validation(httperr.FieldError{Field: fieldOf(syntaxErr.JSONPointer, v),
			Message: "is not valid JSON: " + syntaxErr.Err.Error()})
	case errors.As(err, &semanticErr) && semanticErr.JSONPointer == "":
		return httperr.New(http.StatusBadRequest, "invalid_json", "The body must be a JSON object.")
	case errors.As(err, &semanticErr) && errors.Is(err, jsonv2.ErrUnknownName):
		return httperr.Validation(httperr.FieldError{Field: fieldOf(semanticErr.JSONPointer, v), Message: "is not a known field"})
	case errors.As(err, &semanticErr):
		return httperr.Validation(httperr.FieldError{Field: fieldOf(semanticErr.JSONPointer, v), Message: "must be " + describeType(semanticErr.GoType)})
	}
	return httperr.New(http.StatusBadRequest, "invalid_json", "The body is not valid JSON: "+strings.TrimPrefix(err.Error(), "jsontext: "))
}

// fieldOf names the field a JSON pointer (RFC 6901) into a body decoded
// into v points at, as errors name fields: /items/3/amount is
// items[3].amount, /metadata/3 is metadata.3 (v's types tell an array's
// index from a map's key).
func fieldOf(pointer jsontext.Pointer, v any) string {
	var b strings.Builder
	t := reflect.TypeOf(v)
	for token := range pointer.Tokens() {
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		index := false
		switch {
		case t == nil:
		case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
			index, t = true, t.Elem()
		case t.Kind() == reflect.Map:
			t = t.Elem()
		case t.Kind() == reflect.Struct:
			t = jsonFieldType(t, token)
		default:
			t = nil
		}
		switch {
		case index:
			b.WriteString("[" + token + "]")
		case b.Len() > 0:
			b.WriteString("." + token)
		default:
			b.WriteString(token)
		}
	}
	return b.String()
}

// jsonFieldType is the type of the struct field a JSON member name
// decodes into, or nil.
func jsonFieldType(t reflect.Type, name string) reflect.Type {
	for f := range t.Fields() {
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == name || (tag == "" && f.Name == name) {
			return f.Type
		}
	}
	return nil
}

// TooLarge is the 413 for a body past its limit, or nil for other errors.
func TooLarge(err error) *httperr.Error {
	var maxErr *http.MaxBytesError
	if !errors.As(err, &maxErr) {
		return nil
	}
	return httperr.New(http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("The body is larger than %d bytes.", maxErr.Limit))
}

func describeType(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "of another type"
	}
	switch t.Kind().String() {
	case "int64", "int":
		return "an integer number of minor units within range"
	case "string":
		return "a string"
	case "map":
		return "an object"
	case "slice", "array":
		return "an array"
	case "struct":
		return "an object"
	}
	return "a " + t.String()
}

// Validator collects field errors, so a request learns of all at once.
type Validator struct{ Errs []httperr.FieldError }

// Add records that field is wrong.
func (v *Validator) Add(field, msg string) {
	v.Errs = append(v.Errs, httperr.FieldError{Field: field, Message: msg})
}

// Err is the 400 listing every field error, or nil when there are none.
func (v *Validator) Err() *httperr.Error {
	if len(v.Errs) == 0 {
		return nil
	}
	return httperr.Validation(v.Errs...)
}

// Text checks a free-text string: valid UTF-8, no NUL (Postgres refuses
// it), within maxLen characters.
func (v *Validator) Text(field, s string, required bool, maxLen int) {
	switch {
	case s == "" && required:
		v.Add(field, "is required")
	case !utf8.ValidString(s) || strings.ContainsRune(s, 0) || strings.ContainsRune(s, utf8.RuneError):
		v.Add(field, "must be valid UTF-8 without NUL characters")
	case utf8.RuneCountInString(s) > maxLen:
		v.Add(field, fmt.Sprintf("must be at most %d characters", maxLen))
	}
}

// OptText is Text for an optional field: absent is fine, present must be
// non-empty.
func (v *Validator) OptText(field string, s *string, maxLen int) {
	if s != nil {
		v.Text(field, *s, true, maxLen)
	}
}

// Token checks an identifier: printable ASCII without spaces.
func (v *Validator) Token(field, s string, maxLen int) {
	switch {
	case s == "":
		v.Add(field, "is required")
	case len(s) > maxLen:
		v.Add(field, fmt.Sprintf("must be at most %d characters", maxLen))
	case !Printable(s):
		v.Add(field, "must be printable ASCII without spaces")
	}
}

// Printable reports whether s is printable ASCII without spaces: what ids,
// referenceIds and header values must be.
func Printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// PathID reports whether a path value could name an object: at most
// IDLenMax printable ASCII bytes. Others never reach the database (some,
// like NUL, Postgres refuses outright).
func PathID(s string) bool { return len(s) <= IDLenMax && Printable(s) }

// Amount checks a positive amount of minor units.
func (v *Validator) Amount(field string, n int64) {
	switch {
	case n <= 0:
		v.Add(field, "must be a positive integer number of minor units")
	case n > AmountMax:
		v.Add(field, fmt.Sprintf("must be at most %d", int64(AmountMax)))
	}
}

// MajorAmount reads an amount written in major units of cur (a JSON
// number such as 50.25, or the same digits as a JSON string) into minor
// units, exactly: from the JSON text, never through a float, and never
// rounded: more decimals than the currency has is an error. An absent
// amount is 0 (an error when required); zero is an error unless
// allowZero.
func (v *Validator) MajorAmount(field string, raw json.RawMessage, cur ledger.Currency, required, allowZero bool) int64 {
	text := string(raw)
	switch {
	case len(raw) == 0 || text == "null":
		if required {
			v.Add(field, "is required")
		}
		return 0
	case raw[0] == '"':
		if err := json.Unmarshal(raw, &text); err != nil {
			v.Add(field, "must be a decimal number such as 12.50")
			return 0
		}
	case raw[0] != '-' && (raw[0] < '0' || raw[0] > '9'):
		v.Add(field, "must be a decimal number such as 12.50")
		return 0
	}
	return v.MajorAmountText(field, text, cur, allowZero)
}

// MajorAmountText reads an amount a person typed in major units of cur
// (a form field, a CSV cell) into minor units, by MajorAmount's rules;
// empty is "is required".
func (v *Validator) MajorAmountText(field, text string, cur ledger.Currency, allowZero bool) int64 {
	if text == "" {
		v.Add(field, "is required")
		return 0
	}
	exp := cur.Exponent()
	_, frac, _ := strings.Cut(text, ".")
	switch {
	case strings.ContainsAny(text, "eE") && strings.Trim(text, "0123456789.eE+-") == "":
		v.Add(field, "must be a plain decimal such as 12.50, without an exponent")
	case strings.HasPrefix(text, "-"):
		v.Add(field, "must not be negative")
	case !plainDecimal(text):
		v.Add(field, "must be a decimal number such as 12.50")
	case len(frac) > exp && exp == 0:
		v.Add(field, fmt.Sprintf("must be a whole number: %s has no minor units", cur))
	case len(frac) > exp:
		v.Add(field, fmt.Sprintf("must have at most %d decimal places for %s; it is never rounded", exp, cur))
	default:
		// Digits that fit the currency's places: ParseMajor fails only
		// past what an int64 holds.
		n, err := cur.ParseMajor(text)
		switch {
		case err != nil || n > AmountMax:
			v.Add(field, "must be at most "+cur.FormatMajor(AmountMax))
		case n == 0 && !allowZero:
			v.Add(field, "must be greater than zero")
		default:
			return n
		}
	}
	return 0
}

// plainDecimal reports whether s is written as a JSON number without sign
// or exponent: digits without a leading zero, then maybe a point and
// digits. A string amount must hold exactly that: no spaces, no "0001".
func plainDecimal(s string) bool {
	whole, frac, point := strings.Cut(s, ".")
	return allDigits(whole) && (whole == "0" || whole[0] != '0') && (!point || allDigits(frac))
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Currency checks an ISO 4217 code and returns it.
func (v *Validator) Currency(field, code string) ledger.Currency {
	if code == "" {
		v.Add(field, "is required")
		return ""
	}
	cur, err := ledger.ParseCurrency(code)
	if err != nil {
		v.Add(field, "must be an ISO 4217 code such as USD")
	}
	return cur
}

// OneOf checks that s is one of the allowed values.
func (v *Validator) OneOf(field, s string, allowed ...string) {
	for _, a := range allowed {
		if s == a {
			return
		}
	}
	if s == "" {
		v.Add(field, "is required")
		return
	}
	v.Add(field, "must be one of "+strings.Join(allowed, ", "))
}

// Metadata checks a partner's key-value annotations.
func (v *Validator) Metadata(field string, m map[string]string) {
	if len(m) > MetadataKeysMax {
		v.Add(field, fmt.Sprintf("must have at most %d keys", MetadataKeysMax))
		return
	}
	for k, val := range m {
		v.Text(field+"."+k, k, true, MetadataKeyLenMax)
		v.Text(field+"."+k, val, false, MetadataValueLenMax)
	}
}

// Email checks an optional email address.
func (v *Validator) Email(field string, s *string) {
	if s == nil {
		return
	}
	v.Text(field, *s, true, EmailLenMax)
	if addr, err := mail.ParseAddress(*s); err != nil || addr.Address != *s {
		v.Add(field, "must be an email address")
	}
}

// Timestamps a client sends lie within these years, in UTC: one stored
// then reads back as RFC 3339 (a four-digit year) in any time zone a
// server may run in. An offset can carry 9999-12-31T23:59:59-14:00 into
// year 10000, which encoding/json cannot write: every answer holding it
// (a campaign, the list of campaigns) would go out empty.
const (
	TimeYearMin = 1
	TimeYearMax = 9998
)

// rfc3339 is how RFC 3339 writes a date-time. time.Parse also takes a
// comma before the fraction and an offset of 24 hours (+24:00, +23:60),
// which other readers of the timestamp (the OpenAPI document's date-time
// among them) refuse.
var rfc3339 = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$`)

// Time parses an optional RFC 3339 timestamp.
func (v *Validator) Time(field string, s *string) *time.Time {
	if s == nil {
		return nil
	}
	t, err := time.Parse(time.RFC3339, *s)
	if err != nil || !rfc3339.MatchString(*s) {
		v.Add(field, "must be an RFC 3339 timestamp such as 2026-01-02T15:04:05Z")
		return nil
	}
	if y := t.UTC().Year(); y < TimeYearMin || y > TimeYearMax {
		v.Add(field, fmt.Sprintf("must be within the years %04d and %d (UTC)", TimeYearMin, TimeYearMax))
		return nil
	}
	return &t
}

// QueryToken reads an optional query parameter that must be an identifier.
func (v *Validator) QueryToken(r *http.Request, name string) string {
	s := r.URL.Query().Get(name)
	if s != "" {
		v.Token(name, s, ReferenceIDLenMax)
	}
	return s
}

// PreferWaitMax bounds how long a client may ask to wait for an outcome.
const PreferWaitMax = 10 * time.Second

// PreferWait reads an RFC 7240 "Prefer: wait=N" (seconds) from h, capped at
// PreferWaitMax. A missing or malformed preference is no wait: preferences
// a server does not understand are ignored, never refused.
func PreferWait(h http.Header) time.Duration {
	for _, line := range h.Values("Prefer") {
		for _, pref := range strings.Split(line, ",") {
			pref, _, _ = strings.Cut(pref, ";")
			name, value, ok := strings.Cut(strings.TrimSpace(pref), "=")
			if !ok || !strings.EqualFold(strings.TrimSpace(name), "wait") {
				continue
			}
			n, err := strconv.Atoi(strings.Trim(strings.TrimSpace(value), `"`))
			if err != nil || n <= 0 {
				return 0
			}
			return min(time.Duration(n)*time.Second, PreferWaitMax)
		}
	}
	return 0
}
