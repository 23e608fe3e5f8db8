package validate

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/orbt/orbt/ledger"
)

func TestPreferWait(t *testing.T) {
	for prefer, want := range map[string]time.Duration{
		"":                      0,
		"wait=3":                3 * time.Second,
		"respond-async, wait=2": 2 * time.Second,
		"WAIT=1":                time.Second,
		"wait=60":               PreferWaitMax,
		"wait=-1":               0,
		"wait=soon":             0,
		"handling=strict":       0,
	} {
		h := http.Header{}
		if prefer != "" {
			h.Set("Prefer", prefer)
		}
		if got := PreferWait(h); got != want {
			t.Errorf("Prefer: %q: wait %s, want %s", prefer, got, want)
		}
	}
}

// Bodies are named field by field as decoded: an array's index, a map's
// key, and a field given twice or in another case refused.
func TestDecodeJSONNamesTheField(t *testing.T) {
	type item struct {
		Amount int64 `json:"amount"`
	}
	type body struct {
		Items    []item            `json:"items"`
		Metadata map[string]string `json:"metadata"`
		Note     *string           `json:"note"`
	}
	for in, want := range map[string]string{
		`{"items":[{"amount":1},{"amount":"x"}]}`: "items[1].amount",
		`{"items":[{"amount":1,"amount":2}]}`:     "items[0].amount",
		`{"items":[{"AMOUNT":1}]}`:                "items[0].AMOUNT",
		`{"items":[1]}`:                           "items[0]",
		`{"metadata":{"3":1}}`:                    "metadata.3",
		`{"metadata":{"a":"1","a":"2"}}`:          "metadata.a",
		`{"note":"\ud800"}`:                       "note",
		"{\"note\":\"\xff\"}":                     "note",
	} {
		var v body
		e := DecodeJSON(httptest.NewRecorder(), httptest.NewRequest("POST", "/", strings.NewReader(in)), &v, 1<<20)
		if e == nil || e.Status != 400 || len(e.Fields) != 1 || e.Fields[0].Field != want {
			t.Errorf("%s: %+v, want field %s", in, e, want)
		}
	}
	var v body
	if e := DecodeJSON(httptest.NewRecorder(), httptest.NewRequest("POST", "/", strings.NewReader(`{"items":[1]}`)), &v, 1<<20); e == nil ||
		strings.Contains(e.Fields[0].Message, "validate.") {
		t.Errorf("a Go type name in the message: %+v", e)
	}
}

// An amount in major units past the largest amount says so, whatever the
// currency's places.
func TestMajorAmountTooLarge(t *testing.T) {
	for _, tc := range []struct{ cur, in string }{{"USD", "99999999999999999"}, {"CLF", "1000000000000000"}, {"JPY", "1000000000001"}} {
		var v Validator
		v.MajorAmount("amount", json.RawMessage(tc.in), ledger.Currency(tc.cur), true, false)
		if len(v.Errs) != 1 || !strings.HasPrefix(v.Errs[0].Message, "must be at most") {
			t.Errorf("%s %s: %+v", tc.cur, tc.in, v.Errs)
		}
	}
}

// A timestamp is taken only as RFC 3339 writes it, and when it reads back
// as RFC 3339 in any time zone: an offset that carries it out of years 1
// to 9998 UTC is refused.
func TestTimeReadsBack(t *testing.T) {
	for in, ok := range map[string]bool{
		"2026-01-02T15:04:05Z":      true,
		"9998-12-31T23:59:59Z":      true,
		"9999-01-01T00:00:00Z":      false,
		"9999-12-31T23:59:59-14:00": false, // year 10000 in UTC
		"0001-01-01T00:00:00Z":      true,
		"0000-12-31T23:59:59Z":      false,
		"0001-01-01T00:00:00+14:00": false, // year 0 in UTC
		"2026-01-01T00:00:00.5Z":    true,
		"2026-01-01T00:00:00+23:59": true,
		"2026-01-01T00:00:00,5Z":    false, // time.Parse takes the comma; RFC 3339 does not
		"2026-01-01T00:00:00+24:00": false, // nor an offset of a day
		"2026-01-01T00:00:00+23:60": false,
	} {
		var v Validator
		got := v.Time("startsAt", &in)
		if ok != (got != nil) || ok != (len(v.Errs) == 0) {
			t.Errorf("%s: %v %+v, want taken %v", in, got, v.Errs, ok)
			continue
		}
		if ok {
			if _, err := json.Marshal(got.In(time.FixedZone("", 14*3600))); err != nil {
				t.Errorf("%s: %v", in, err)
			}
		}
	}
}
