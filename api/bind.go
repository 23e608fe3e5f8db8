package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/ledger"
)

// Limits on what a client may send.
const (
	bodyBytesMax        = 1 << 20 // 1 MiB
	amountMax           = 1_000_000_000_000
	referenceIDLenMax   = 255
	idLenMax            = 64
	nameLenMax          = 200
	descriptionLenMax   = 500
	emailLenMax         = 254
	metadataKeysMax     = 50
	metadataKeyLenMax   = 40
	metadataValueLenMax = 500
	brandsMax           = 100
	pageLimitDefault    = 50
	pageLimitMax        = 500
)

// decodeJSON reads a JSON object strictly: unknown fields, wrong types,
// trailing data and oversized bodies are 4xx problems naming the field.
func decodeJSON(c *gin.Context, v any) *problem {
	return decodeJSONLimit(c, v, bodyBytesMax)
}

// decodeJSONLimit is decodeJSON for a body of up to limit bytes.
func decodeJSONLimit(c *gin.Context, v any, limit int64) *problem {
	body := http.MaxBytesReader(c.Writer, c.Request.Body, limit)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			return newProblem(http.StatusBadRequest, "invalid_json", "The body must hold exactly one JSON object.")
		}
		return nil
	}
	var (
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		maxErr    *http.MaxBytesError
	)
	switch {
	case errors.As(err, &maxErr):
		return newProblem(http.StatusRequestEntityTooLarge, "body_too_large",
			fmt.Sprintf("The body is larger than %d bytes.", maxErr.Limit))
	case errors.Is(err, io.EOF):
		return newProblem(http.StatusBadRequest, "invalid_json", "The body is empty; a JSON object is required.")
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF):
		return newProblem(http.StatusBadRequest, "invalid_json", "The body is not valid JSON: "+err.Error())
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return newProblem(http.StatusBadRequest, "invalid_json", "The body must be a JSON object.")
		}
		return validationProblem([]fieldError{{Field: field, Message: "must be " + describeType(typeErr)}})
	}
	// encoding/json has no typed error for unknown fields; its message is
	// `json: unknown field "name"` and has been stable since Go 1.10.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return validationProblem([]fieldError{{Field: strings.Trim(name, `"`), Message: "is not a known field"}})
	}
	return newProblem(http.StatusBadRequest, "invalid_json", "The body could not be read: "+err.Error())
}

func describeType(e *json.UnmarshalTypeError) string {
	switch e.Type.Kind().String() {
	case "int64", "int":
		return "an integer number of minor units within range"
	case "string":
		return "a string"
	case "map":
		return "an object"
	case "slice":
		return "an array"
	}
	return "a " + e.Type.String()
}

// validator collects field errors.
type validator struct{ errs []fieldError }

func (v *validator) add(field, msg string) {
	v.errs = append(v.errs, fieldError{Field: field, Message: msg})
}

func (v *validator) problem() *problem {
	if len(v.errs) == 0 {
		return nil
	}
	return validationProblem(v.errs)
}

// text checks a free-text string: valid UTF-8, no NUL (Postgres refuses it),
// within maxLen characters.
func (v *validator) text(field, s string, required bool, maxLen int) {
	switch {
	case s == "" && required:
		v.add(field, "is required")
	case !utf8.ValidString(s) || strings.ContainsRune(s, 0) || strings.ContainsRune(s, utf8.RuneError):
		v.add(field, "must be valid UTF-8 without NUL characters")
	case utf8.RuneCountInString(s) > maxLen:
		v.add(field, fmt.Sprintf("must be at most %d characters", maxLen))
	}
}

func (v *validator) optText(field string, s *string, maxLen int) {
	if s != nil {
		v.text(field, *s, true, maxLen)
	}
}

// token checks an identifier: printable ASCII without spaces.
func (v *validator) token(field, s string, maxLen int) {
	if s == "" {
		v.add(field, "is required")
		return
	}
	if len(s) > maxLen {
		v.add(field, fmt.Sprintf("must be at most %d characters", maxLen))
		return
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			v.add(field, "must be printable ASCII without spaces")
			return
		}
	}
}

func (v *validator) amount(field string, n int64) {
	switch {
	case n <= 0:
		v.add(field, "must be a positive integer number of minor units")
	case n > amountMax:
		v.add(field, fmt.Sprintf("must be at most %d", int64(amountMax)))
	}
}

func (v *validator) currency(field, code string) ledger.Currency {
	if code == "" {
		v.add(field, "is required")
		return ""
	}
	cur, err := ledger.ParseCurrency(code)
	if err != nil {
		v.add(field, "must be an ISO 4217 code such as USD")
	}
	return cur
}

func (v *validator) oneOf(field, s string, allowed ...string) {
	for _, a := range allowed {
		if s == a {
			return
		}
	}
	if s == "" {
		v.add(field, "is required")
		return
	}
	v.add(field, "must be one of "+strings.Join(allowed, ", "))
}

func (v *validator) metadata(field string, m map[string]string) {
	if len(m) > metadataKeysMax {
		v.add(field, fmt.Sprintf("must have at most %d keys", metadataKeysMax))
		return
	}
	for k, val := range m {
		v.text(field+"."+k, k, true, metadataKeyLenMax)
		v.text(field+"."+k, val, false, metadataValueLenMax)
	}
}

func (v *validator) email(field string, s *string) {
	if s == nil {
		return
	}
	v.text(field, *s, true, emailLenMax)
	if addr, err := mail.ParseAddress(*s); err != nil || addr.Address != *s {
		v.add(field, "must be an email address")
	}
}

func (v *validator) time(field string, s *string) *time.Time {
	if s == nil {
		return nil
	}
	t, err := time.Parse(time.RFC3339, *s)
	if err != nil {
		v.add(field, "must be an RFC 3339 timestamp such as 2026-01-02T15:04:05Z")
		return nil
	}
	return &t
}

// page reads ?limit= and ?cursor=.
type page struct {
	limit  int
	cursor string
}

func readPage(c *gin.Context) (page, *problem) {
	var v validator
	p := page{limit: pageLimitDefault, cursor: c.Query("cursor")}
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > pageLimitMax {
			v.add("limit", fmt.Sprintf("must be an integer from 1 to %d", pageLimitMax))
		}
		p.limit = n
	}
	if p.cursor != "" {
		v.token("cursor", p.cursor, idLenMax)
	}
	return p, v.problem()
}

// list is a page of results.
type list[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"nextCursor"`
}

// pageOf trims a result fetched with limit+1 rows and sets the next cursor.
func pageOf[T any](items []T, limit int, cursorOf func(T) string) list[T] {
	l := list[T]{Data: items}
	if l.Data == nil {
		l.Data = []T{}
	}
	if len(items) > limit {
		l.Data = items[:limit]
		next := cursorOf(items[limit-1])
		l.NextCursor = &next
	}
	return l
}

// queryToken reads an optional query parameter that must be an identifier.
func queryToken(c *gin.Context, v *validator, name string) string {
	s := c.Query(name)
	if s != "" {
		v.token(name, s, referenceIDLenMax)
	}
	return s
}
