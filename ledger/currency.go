package ledger

import (
	"fmt"
	"strconv"
	"strings"
)

// Currency is an ISO 4217 alphabetic code such as "USD".
type Currency string

// ParseCurrency accepts an ISO 4217 code in current use that has minor
// units: one of isoCurrencies.
func ParseCurrency(code string) (Currency, error) {
	if len(code) != 3 {
		return "", fmt.Errorf("currency %q: want a three-letter ISO 4217 code", code)
	}
	for _, r := range code {
		if r < 'A' || r > 'Z' {
			return "", fmt.Errorf("currency %q: want upper-case letters", code)
		}
	}
	if !isoCurrencies[code] {
		return "", fmt.Errorf("currency %q: not an ISO 4217 currency in use with minor units", code)
	}
	return Currency(code), nil
}

// isoCurrencies are the codes of ISO 4217's list of current currencies and
// funds (amendment of 2025) that have minor units: not the metals, fund
// and settlement units, test and no-currency codes (XAU, XDR, XTS, XXX,
// …), nor withdrawn codes (DEM, HRK, …). ANG and BGN stay while their
// holders convert (to XCG in 2025, to EUR in 2026). A static table, not
// golang.org/x/text's: its list is years behind (no MRU, VES, SLE, ZWG)
// and keeps withdrawn codes.
var isoCurrencies = map[string]bool{
	"AED": true, "AFN": true, "ALL": true, "AMD": true, "ANG": true, "AOA": true, "ARS": true, "AUD": true,
	"AWG": true, "AZN": true, "BAM": true, "BBD": true, "BDT": true, "BGN": true, "BHD": true, "BIF": true,
	"BMD": true, "BND": true, "BOB": true, "BOV": true, "BRL": true, "BSD": true, "BTN": true, "BWP": true,
	"BYN": true, "BZD": true, "CAD": true, "CDF": true, "CHE": true, "CHF": true, "CHW": true, "CLF": true,
	"CLP": true, "CNY": true, "COP": true, "COU": true, "CRC": true, "CUP": true, "CVE": true, "CZK": true,
	"DJF": true, "DKK": true, "DOP": true, "DZD": true, "EGP": true, "ERN": true, "ETB": true, "EUR": true,
	"FJD": true, "FKP": true, "GBP": true, "GEL": true, "GHS": true, "GIP": true, "GMD": true, "GNF": true,
	"GTQ": true, "GYD": true, "HKD": true, "HNL": true, "HTG": true, "HUF": true, "IDR": true, "ILS": true,
	"INR": true, "IQD": true, "IRR": true, "ISK": true, "JMD": true, "JOD": true, "JPY": true, "KES": true,
	"KGS": true, "KHR": true, "KMF": true, "KPW": true, "KRW": true, "KWD": true, "KYD": true, "KZT": true,
	"LAK": true, "LBP": true, "LKR": true, "LRD": true, "LSL": true, "LYD": true, "MAD": true, "MDL": true,
	"MGA": true, "MKD": true, "MMK": true, "MNT": true, "MOP": true, "MRU": true, "MUR": true, "MVR": true,
	"MWK": true, "MXN": true, "MXV": true, "MYR": true, "MZN": true, "NAD": true, "NGN": true, "NIO": true,
	"NOK": true, "NPR": true, "NZD": true, "OMR": true, "PAB": true, "PEN": true, "PGK": true, "PHP": true,
	"PKR": true, "PLN": true, "PYG": true, "QAR": true, "RON": true, "RSD": true, "RUB": true, "RWF": true,
	"SAR": true, "SBD": true, "SCR": true, "SDG": true, "SEK": true, "SGD": true, "SHP": true, "SLE": true,
	"SOS": true, "SRD": true, "SSP": true, "STN": true, "SVC": true, "SYP": true, "SZL": true, "THB": true,
	"TJS": true, "TMT": true, "TND": true, "TOP": true, "TRY": true, "TTD": true, "TWD": true, "TZS": true,
	"UAH": true, "UGX": true, "USD": true, "USN": true, "UYI": true, "UYU": true, "UYW": true, "UZS": true,
	"VED": true, "VES": true, "VND": true, "VUV": true, "WST": true, "XAF": true, "XCD": true, "XCG": true,
	"XOF": true, "XPF": true, "YER": true, "ZAR": true, "ZMW": true, "ZWG": true,
}

// isoExponents are the ISO 4217 minor-unit exponents that are not 2. They
// are ISO's, not CLDR's display digits (golang.org/x/text's), which differ
// for IDR, COP, IQD and a dozen more: amounts are minor units as ISO 4217
// defines them.
var isoExponents = map[string]int{
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
	"RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
	"CLF": 4, "UYW": 4,
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
