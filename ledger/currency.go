package ledger

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/text/currency"
)

// Currency is an ISO 4217 alphabetic code such as "USD".
type Currency string

// ParseCurrency accepts an upper-case ISO 4217 code in current use.
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
	return Currency(code), nil
}

// Exponent is the number of minor-unit digits: 2 for USD, 0 for JPY, 3 for KWD.
func (c Currency) Exponent() int {
	unit, err := currency.ParseISO(string(c))
	if err != nil {
		return 2
	}
	scale, _ := currency.Standard.Rounding(unit)
	return scale
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
