// Package batchreq reads bulk payouts as clients send them, as JSON items
// or as CSV rows, and validates every item, so a batch with a bad item is
// refused whole with all its errors at once. The native API takes amounts
// in minor units; the console's CSV takes them in major units.
package batchreq

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/orbt/orbt/httperr"
	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/validate"
)

// Limits of a batch.
const (
	// BodyBytesMax bounds a batch's body: 8 MiB.
	BodyBytesMax = 8 << 20
	// ItemsMaxDefault is the most items a batch holds unless configured
	// (ORBT_BATCH_ITEMS_MAX).
	ItemsMaxDefault = 10_000
)

// Item is one item of a batch as a client sends it, in JSON or as a CSV
// row with the same column names.
type Item struct {
	ReferenceID        string  `json:"referenceId"`
	WalletID           string  `json:"walletId"`
	ConsumerExternalID string  `json:"consumerExternalId"`
	Type               string  `json:"type"`
	Amount             int64   `json:"amount"`
	Currency           string  `json:"currency"`
	CampaignID         string  `json:"campaignId"`
	Description        *string `json:"description"`

	// majorAmount is a CSV row's amount in major units, read once its
	// currency is known.
	majorAmount *string
}

// Units says how a CSV's amount column is written.
type Units int

const (
	// MinorUnits: integers of the currency's minor unit (the API's form).
	MinorUnits Units = iota
	// MajorUnits: decimals such as 12.50 (the console's form).
	MajorUnits
)

// Columns lists the columns a CSV batch may have, in the order a template
// shows them; the header row names them in any order.
var Columns = []string{"referenceId", "walletId", "consumerExternalId", "type", "amount", "currency", "campaignId", "description"}

// set stores a CSV cell in the item's field named by column.
func (it *Item) set(column, value string, units Units) error {
	switch column {
	case "referenceId":
		it.ReferenceID = value
	case "walletId":
		it.WalletID = value
	case "consumerExternalId":
		it.ConsumerExternalID = value
	case "type":
		it.Type = value
	case "currency":
		it.Currency = value
	case "campaignId":
		it.CampaignID = value
	case "description":
		if value != "" {
			it.Description = &value
		}
	case "amount":
		if units == MajorUnits {
			it.majorAmount = &value
			return nil
		}
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return errors.New("must be an integer number of minor units within range")
		}
		it.Amount = n
	}
	return nil
}

// validate checks one item and returns it as the ledger takes it.
func (it Item) validate(v *validate.Validator) ledger.BatchItem {
	v.Token("referenceId", it.ReferenceID, validate.ReferenceIDLenMax)
	v.OneOf("type", it.Type, ledger.TypeCredit, ledger.TypeDebit)
	switch {
	case it.WalletID != "" && it.ConsumerExternalID != "":
		v.Add("walletId", "give walletId or consumerExternalId, not both")
	case it.WalletID != "":
		v.Token("walletId", it.WalletID, validate.IDLenMax)
		if it.CampaignID != "" {
			v.Add("campaignId", "goes with consumerExternalId; a walletId already names its campaign")
		}
	case it.ConsumerExternalID != "":
		v.Token("consumerExternalId", it.ConsumerExternalID, validate.ReferenceIDLenMax)
		if it.CampaignID != "" {
			v.Token("campaignId", it.CampaignID, validate.IDLenMax)
		}
	default:
		v.Add("walletId", "is required, or consumerExternalId")
	}
	cur := v.Currency("currency", it.Currency)
	amount := it.Amount
	if it.majorAmount != nil {
		amount = v.MajorAmountText("amount", *it.majorAmount, cur, false)
	} else {
		v.Amount("amount", amount)
	}
	v.OptText("description", it.Description, validate.DescriptionLenMax)
	return ledger.BatchItem{ReferenceID: it.ReferenceID, Type: it.Type, WalletID: it.WalletID,
		ConsumerExternalID: it.ConsumerExternalID, CampaignID: it.CampaignID, Amount: amount, Currency: cur,
		Description: it.Description}
}

// Validate checks the batch's item count beside what v already holds
// about the batch (its referenceId, say), then every item (lines: each
// one's CSV line, if from a CSV), and returns them as the ledger takes
// them, or a 400 listing every error.
func Validate(v *validate.Validator, items []Item, lines []int, itemsMax int) ([]ledger.BatchItem, *httperr.Error) {
	switch {
	case len(items) == 0:
		v.Add("items", "must hold at least one item")
	case len(items) > itemsMax:
		v.Add("items", fmt.Sprintf("must hold at most %d items", itemsMax))
	}
	if p := v.Err(); p != nil {
		return nil, p
	}
	out := make([]ledger.BatchItem, len(items))
	var errs []httperr.FieldError
	for i, it := range items {
		var iv validate.Validator
		out[i] = it.validate(&iv)
		for _, e := range iv.Errs {
			errs = append(errs, httperr.ItemField(i, e.Field, e.Message, lines))
		}
	}
	if len(errs) > 0 {
		return nil, httperr.Items(http.StatusBadRequest, "validation_error", "Some items are invalid; nothing was stored.", errs)
	}
	return out, nil
}

// ReadCSV reads a CSV batch: a header row naming its columns, then one
// item per row. It returns the items with each one's line, or a 400 with
// every cell that could not be read.
func ReadCSV(body io.Reader, itemsMax int, units Units) ([]Item, []int, *httperr.Error) {
	r := csv.NewReader(body)
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil {
		return nil, nil, csvProblem(err, "The CSV needs a header row naming its columns.")
	}
	header = slices.Clone(header) // ReuseRecord: later reads overwrite it
	seen := map[string]bool{}
	var v validate.Validator
	for i, name := range header {
		name = strings.TrimSpace(strings.TrimPrefix(name, "\ufeff")) // a spreadsheet's byte order mark
		header[i] = name
		switch {
		case !slices.Contains(Columns, name):
			v.Add("header", fmt.Sprintf("column %d %q is not one of %s", i+1, name, strings.Join(Columns, ", ")))
		case seen[name]:
			v.Add("header", fmt.Sprintf("column %q appears twice", name))
		}
		seen[name] = true
	}
	if p := v.Err(); p != nil {
		return nil, nil, p
	}
	var (
		items []Item
		lines []int
		errs  []httperr.FieldError
	)
	for {
		record, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, csvProblem(err, "")
		}
		if len(items) == itemsMax {
			return nil, nil, httperr.Validation(httperr.FieldError{Field: "items", Message: fmt.Sprintf("must hold at most %d items", itemsMax)})
		}
		line, _ := r.FieldPos(0)
		var it Item
		for i, value := range record {
			if err := it.set(header[i], value, units); err != nil {
				errs = append(errs, httperr.ItemField(len(items), header[i], err.Error(), nil))
				errs[len(errs)-1].Line = line
			}
		}
		items = append(items, it)
		lines = append(lines, line)
	}
	if len(errs) > 0 {
		return nil, nil, httperr.Items(http.StatusBadRequest, "validation_error", "Some rows are invalid; nothing was stored.", errs)
	}
	return items, lines, nil
}

func csvProblem(err error, detail string) *httperr.Error {
	if e := validate.TooLarge(err); e != nil {
		return e
	}
	if detail == "" || !errors.Is(err, io.EOF) {
		detail = "The body is not valid CSV: " + err.Error()
	}
	return httperr.New(http.StatusBadRequest, "invalid_csv", detail)
}
