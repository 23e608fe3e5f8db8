package ledger

import (
	"fmt"

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
