package ledger

import "testing"

func TestMajorUnitsAreExact(t *testing.T) {
	for _, tc := range []struct {
		cur  Currency
		in   string
		want int64
		ok   bool
	}{
		{"USD", "25", 2500, true}, {"USD", "25.5", 2550, true}, {"USD", "0.01", 1, true}, {"USD", " 19.99 ", 1999, true},
		{"USD", "1.005", 0, false}, {"USD", "1.", 0, false}, {"USD", ".5", 0, false}, {"USD", "-1", 0, false},
		{"USD", "1e3", 0, false}, {"USD", "", 0, false}, {"USD", "1,5", 0, false}, {"USD", "9999999999999999", 0, false},
		{"JPY", "1000", 1000, true}, {"JPY", "1000.5", 0, false}, {"KWD", "1.234", 1234, true},
	} {
		got, err := tc.cur.ParseMajor(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%s ParseMajor(%q) = %d, %v; want %d, ok %v", tc.cur, tc.in, got, err, tc.want, tc.ok)
		}
		if tc.ok {
			if back, _ := tc.cur.ParseMajor(tc.cur.FormatMajor(got)); back != got {
				t.Errorf("%s FormatMajor(%d) = %q does not read back", tc.cur, got, tc.cur.FormatMajor(got))
			}
		}
	}
	if s := Currency("USD").FormatMajor(5); s != "0.05" {
		t.Errorf("FormatMajor(5) = %q", s)
	}
}

// Exponents are ISO 4217's, not CLDR's display digits.
func TestExponentsAreISO4217s(t *testing.T) {
	for _, exp := range isoExponents {
		if exp < 0 || exp > 4 {
			t.Errorf("exponent %d", exp)
		}
	}
	for code := range isoExponents {
		if !isoCurrencies[code] {
			t.Errorf("%s has an exponent but is not a currency", code)
		}
	}
	for code, want := range map[Currency]int{"USD": 2, "EUR": 2, "JPY": 0, "KRW": 0, "KWD": 3, "BHD": 3, "IQD": 3,
		"IDR": 2, "COP": 2, "HUF": 2, "PKR": 2, "CLF": 4, "CLP": 0, "UYW": 4, "MRU": 2, "VES": 2, "SLE": 2, "ZWG": 2, "XCG": 2} {
		if _, err := ParseCurrency(string(code)); err != nil {
			t.Errorf("%s refused: %v", code, err)
		}
		if got := code.Exponent(); got != want {
			t.Errorf("%s exponent %d, want %d", code, got, want)
		}
	}
	for _, code := range []string{"XAU", "XTS", "XXX", "XDR", "ABC", "DEM", "HRK", "ZWL", "XFU", "usd"} {
		if _, err := ParseCurrency(code); err == nil {
			t.Errorf("%s accepted", code)
		}
	}
}
