package ledger

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/text/currency"
)

// Currency is an ISO 4217 alphabetic code such as "USD".
type Currency string

// ParseCurrency accepts an upper-case ISO 4217 code in current use that
// has minor units (not a precious metal, a fund unit or a test code).
func ParseCurrency(code string) (Currency, error) {
	if len(code) != 3 {
		return "", fmt.Errorf("currency %q: want a three-letter ISO 4217 code", code)
	}
	for _, r := range code {
		if r < 'A' || r > 'Z' {
			return "", fmt.Errorf("currency %q: want upper-case letters", code)
		}
	}
	unit, err := currency.ParseISO(code)
	if err != nil || unit.String() != code {
		return "", fmt.Errorf("currency %q: not an ISO 4217 code", code)
	}
	if noMinorUnits[code] {
		return "", fmt.Errorf("currency %q: ISO 4217 gives it no minor units", code)
	}
	return Currency(code), nil
}

// isoExponents are the ISO 4217 minor-unit exponents (from the standard's
// list, amendment of 2024) that are not 2. They are ISO's, not CLDR's
// display digits (golang.org/x/text's), which differ for IDR, COP, IQD
// and a dozen more: amounts are minor units as ISO 4217 defines them.
var isoExponents = map[string]int{
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
	"RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
	"CLF": 4, "UYW": 4,
}

// noMinorUnits are the ISO 4217 codes whose minor unit is "N.A.": metals,
// fund and settlement units, the test and no-currency codes.
var noMinorUnits = map[string]bool{
	"XAG": true, "XAU": true, "XBA": true, "XBB": true, "XBC": true, "XBD": true, "XDR": true,
	"XPD": true, "XPT": true, "XSU": true, "XTS": true, "XUA": true, "XXX": true,
}

// Exponent is the number of minor-unit digits by ISO 4217: 2 for USD, 0
// for JPY, 3 for KWD.
func (c Currency) Exponent() int {
	if exp, listed := isoExponents[string(c)]; listed {
		return exp
	}
	return 2
}

// ParseMajor reads an amount written in major units ("25", "25.5",
// "25.50" for USD; "1000" for JPY) into minor units, exactly: digits, at
// most Exponent of them after the point, never through a float.
func (c Currency) ParseMajor(s string) (int64, error) {
	exp := c.Exponent()
	whole, frac, hasPoint := strings.Cut(strings.TrimSpace(s), ".")
	if whole == "" || len(whole) > 15 || !allDigits(whole) || (hasPoint && (frac == "" || len(frac) > exp || !allDigits(frac))) {
		if exp == 0 {
			return 0, fmt.Errorf("amount %q: want a whole number", s)
		}
		return 0, fmt.Errorf("amount %q: want a number with at most %d decimals", s, exp)
	}
	n, err := strconv.ParseInt(whole+frac+strings.Repeat("0", exp-len(frac)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %q: %w", s, err)
	}
	return n, nil
}

// FormatMajor writes minor units in major units with the currency's
// decimals: 2550 USD is "25.50".
func (c Currency) FormatMajor(minor int64) string {
	exp := c.Exponent()
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	digits := strconv.FormatInt(minor, 10)
	if exp == 0 {
		return sign + digits
	}
	if len(digits) <= exp {
		digits = strings.Repeat("0", exp-len(digits)+1) + digits
	}
	return sign + digits[:len(digits)-exp] + "." + digits[len(digits)-exp:]
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
