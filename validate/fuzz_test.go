package validate

import (
	"encoding/json"
	"math/big"
	"regexp"
	"strings"
	"testing"

	"github.com/orbt/orbt/ledger"
)

// fuzzCurrencies have 0, 2, 3 and 4 minor-unit digits.
var fuzzCurrencies = []ledger.Currency{"JPY", "USD", "KWD", "CLF"}

// writtenDecimal is how an amount in major units must be written: a JSON
// number's digits without sign or exponent.
var writtenDecimal = regexp.MustCompile(`^(0|[1-9][0-9]*)(\.([0-9]+))?$`)

// exactMinor is the oracle: the minor units text means in cur, computed
// with math/big apart from the parser under test, or ok false when the
// rules refuse it (not a plain decimal, more decimals than cur has, zero
// unless allowZero, past AmountMax).
func exactMinor(text string, cur ledger.Currency, allowZero bool) (int64, bool) {
	m := writtenDecimal.FindStringSubmatch(text)
	if m == nil || len(m[3]) > cur.Exponent() {
		return 0, false
	}
	r, ok := new(big.Rat).SetString(text)
	if !ok {
		return 0, false
	}
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(cur.Exponent())), nil)))
	if !r.IsInt() {
		return 0, false
	}
	n := r.Num()
	if n.Sign() < 0 || (n.Sign() == 0 && !allowZero) || n.Cmp(big.NewInt(AmountMax)) > 0 {
		return 0, false
	}
	return n.Int64(), true
}

// FuzzMajorAmount holds the exact decimal parser to its rules: it never
// panics; what it takes equals the value computed with math/big, to the
// minor unit; what the rules allow it takes; and a refusal names the field.
func FuzzMajorAmount(f *testing.F) {
	for _, seed := range []struct {
		raw       string
		cur       uint8
		required  bool
		allowZero bool
	}{
		{"50.25", 1, true, false}, {`"50.25"`, 1, true, false}, {"1000", 0, true, false}, {"1.5", 0, true, false},
		{"0.001", 2, true, false}, {"0.0001", 3, true, false}, {"0", 1, true, true}, {"0.00", 1, true, false},
		{"-1", 1, true, false}, {"1e3", 1, true, false}, {"1E-2", 1, true, false}, {"01.5", 1, true, false},
		{"1.", 1, true, false}, {".5", 1, true, false}, {"10000000000.00", 1, true, false}, {"10000000000.01", 1, true, false},
		{"999999999999999.9999", 3, true, false}, {"99999999999999999999", 0, true, false}, {"null", 1, false, false},
		{"", 1, true, false}, {`""`, 1, true, false}, {`"1\u002e5"`, 1, true, false}, {`" 1.5"`, 1, true, false},
		{`"1.5`, 1, true, false}, {"true", 1, true, false}, {"1.500", 1, true, false}, {"1_000", 0, true, false},
		{"0x10", 0, true, false}, {"1/2", 1, true, false}, {"١٢", 0, true, false},
	} {
		f.Add(seed.raw, seed.cur, seed.required, seed.allowZero)
	}
	f.Fuzz(func(t *testing.T, raw string, curIndex uint8, required, allowZero bool) {
		cur := fuzzCurrencies[int(curIndex)%len(fuzzCurrencies)]

		// A JSON value, as a body's field holds it.
		var v Validator
		got := v.MajorAmount("amount", json.RawMessage(raw), cur, required, allowZero)
		text, absent := raw, raw == "" || raw == "null"
		if strings.HasPrefix(raw, `"`) && json.Unmarshal([]byte(raw), &text) != nil {
			text = "not a string"
		}
		switch {
		case absent && required:
			checkRefused(t, "MajorAmount", raw, cur, got, v)
		case absent:
			if got != 0 || len(v.Errs) != 0 {
				t.Fatalf("MajorAmount(%q, %s) absent and optional: %d %+v", raw, cur, got, v.Errs)
			}
		default:
			checkAgainstOracle(t, "MajorAmount", raw, text, cur, allowZero, got, v)
		}

		// The same bytes as text a person typed (a form field, a CSV cell).
		var tv Validator
		got = tv.MajorAmountText("amount", raw, cur, allowZero)
		checkAgainstOracle(t, "MajorAmountText", raw, raw, cur, allowZero, got, tv)
	})
}

func checkAgainstOracle(t *testing.T, fn, raw, text string, cur ledger.Currency, allowZero bool, got int64, v Validator) {
	t.Helper()
	want, ok := exactMinor(text, cur, allowZero)
	switch {
	case !ok:
		checkRefused(t, fn, raw, cur, got, v)
	case len(v.Errs) != 0:
		t.Fatalf("%s(%q, %s) refused what the rules allow (%d minor units): %+v", fn, raw, cur, want, v.Errs)
	case got != want:
		t.Fatalf("%s(%q, %s) = %d minor units, want exactly %d", fn, raw, cur, got, want)
	}
}

// checkRefused: a refusal returns 0 and names the field, and only it.
func checkRefused(t *testing.T, fn, raw string, cur ledger.Currency, got int64, v Validator) {
	t.Helper()
	if got != 0 || len(v.Errs) == 0 {
		t.Fatalf("%s(%q, %s) = %d with errors %+v, want a refusal", fn, raw, cur, got, v.Errs)
	}
	for _, e := range v.Errs {
		if e.Field != "amount" || e.Message == "" {
			t.Fatalf("%s(%q, %s): error %+v does not name the field", fn, raw, cur, e)
		}
	}
}
