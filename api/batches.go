package api

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/httperr"
	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/server"
	"github.com/orbt/orbt/validate"
	"github.com/orbt/orbt/workspace"
)

// Limits of bulk payouts.
const (
	batchBodyBytesMax = 8 << 20 // 8 MiB
	// batchItemsMaxDefault applies when Options.BatchItemsMax is unset.
	batchItemsMaxDefault = 10_000
	// batchRequestTimeout bounds a bulk payout's request: up to 10,000
	// items written in one database transaction, seconds of work when
	// several arrive at once.
	batchRequestTimeout = time.Minute
)

// batchItemRequest is one item of a batch as a client sends it, in JSON or
// as a CSV row with the same column names.
type batchItemRequest struct {
	ReferenceID        string  `json:"referenceId"`
	WalletID           string  `json:"walletId"`
	ConsumerExternalID string  `json:"consumerExternalId"`
	Type               string  `json:"type"`
	Amount             int64   `json:"amount"`
	Currency           string  `json:"currency"`
	CampaignID         string  `json:"campaignId"`
	Description        *string `json:"description"`
}

type batchRequest struct {
	ReferenceID string             `json:"referenceId"`
	Items       []batchItemRequest `json:"items"`
}

// createBatch stores a bulk payout with all its items and answers 202; the
// worker applies the items lane by lane, and the batch completes when none
// is pending.
func (a *API) createBatch(c *gin.Context) {
	req, p := a.readBatch(c)
	if p != nil {
		server.Abort(c, p)
		return
	}
	req.WorkspaceID = wsID(c)
	sub, err := a.ledger.SubmitBatch(c, req, workspace.EnsureConsumers)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.queue.BatchLanes(c, sub.Batch.ID, sub.Lanes)
	a.queue.Deliveries(c, sub.Deliveries)
	server.Replayed(c, sub.Replayed)
	c.JSON(http.StatusAccepted, sub.Batch)
}

// readBatch reads a JSON or CSV batch and validates every item, so a
// malformed item refuses the whole batch with all the errors at once.
func (a *API) readBatch(c *gin.Context) (ledger.BatchRequest, *httperr.Error) {
	itemsMax := a.opts.BatchItemsMax
	if itemsMax <= 0 {
		itemsMax = batchItemsMaxDefault
	}
	mediaType, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type"))
	var (
		req   batchRequest
		lines []int // CSV line of each item, for error messages
		v     validate.Validator
	)
	switch mediaType {
	case "text/csv":
		var p *httperr.Error
		req.ReferenceID = c.GetHeader("Idempotency-Key")
		v.Token("Idempotency-Key", req.ReferenceID, validate.ReferenceIDLenMax)
		req.Items, lines, p = readCSVItems(c, itemsMax)
		if p != nil {
			return ledger.BatchRequest{}, p
		}
	default: // JSON, whatever the client called it (curl -d sends a form type)
		if p := validate.DecodeJSON(c.Writer, c.Request, &req, batchBodyBytesMax); p != nil {
			return ledger.BatchRequest{}, p
		}
		v.Token("referenceId", req.ReferenceID, validate.ReferenceIDLenMax)
	}
	switch {
	case len(req.Items) == 0:
		v.Add("items", "must hold at least one item")
	case len(req.Items) > itemsMax:
		v.Add("items", fmt.Sprintf("must hold at most %d items", itemsMax))
	}
	if p := v.Err(); p != nil {
		return ledger.BatchRequest{}, p
	}

	out := ledger.BatchRequest{ReferenceID: req.ReferenceID, Items: make([]ledger.BatchItem, len(req.Items))}
	var errs []httperr.FieldError
	for i, it := range req.Items {
		var iv validate.Validator
		out.Items[i] = it.validate(&iv)
		for _, e := range iv.Errs {
			errs = append(errs, httperr.ItemField(i, e.Field, e.Message, lines))
		}
	}
	if len(errs) > 0 {
		return ledger.BatchRequest{}, httperr.Items(http.StatusBadRequest, "validation_error",
			"Some items are invalid; nothing was stored.", errs)
	}
	return out, nil
}

func (r batchItemRequest) validate(v *validate.Validator) ledger.BatchItem {
	v.Token("referenceId", r.ReferenceID, validate.ReferenceIDLenMax)
	v.OneOf("type", r.Type, ledger.TypeCredit, ledger.TypeDebit)
	switch {
	case r.WalletID != "" && r.ConsumerExternalID != "":
		v.Add("walletId", "give walletId or consumerExternalId, not both")
	case r.WalletID != "":
		v.Token("walletId", r.WalletID, validate.IDLenMax)
		if r.CampaignID != "" {
			v.Add("campaignId", "goes with consumerExternalId; a walletId already names its campaign")
		}
	case r.ConsumerExternalID != "":
		v.Token("consumerExternalId", r.ConsumerExternalID, validate.ReferenceIDLenMax)
		if r.CampaignID != "" {
			v.Token("campaignId", r.CampaignID, validate.IDLenMax)
		}
	default:
		v.Add("walletId", "is required, or consumerExternalId")
	}
	v.Amount("amount", r.Amount)
	cur := v.Currency("currency", r.Currency)
	v.OptText("description", r.Description, validate.DescriptionLenMax)
	return ledger.BatchItem{ReferenceID: r.ReferenceID, Type: r.Type, WalletID: r.WalletID,
		ConsumerExternalID: r.ConsumerExternalID, CampaignID: r.CampaignID, Amount: r.Amount, Currency: cur,
		Description: r.Description}
}

// csvColumns are the columns a CSV batch may have; the header row names
// them in any order.
var csvColumns = map[string]func(it *batchItemRequest, value string) error{
	"referenceId":        func(it *batchItemRequest, s string) error { it.ReferenceID = s; return nil },
	"walletId":           func(it *batchItemRequest, s string) error { it.WalletID = s; return nil },
	"consumerExternalId": func(it *batchItemRequest, s string) error { it.ConsumerExternalID = s; return nil },
	"type":               func(it *batchItemRequest, s string) error { it.Type = s; return nil },
	"currency":           func(it *batchItemRequest, s string) error { it.Currency = s; return nil },
	"campaignId":         func(it *batchItemRequest, s string) error { it.CampaignID = s; return nil },
	"description": func(it *batchItemRequest, s string) error {
		if s != "" {
			it.Description = &s
		}
		return nil
	},
	"amount": func(it *batchItemRequest, s string) error {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return errors.New("must be an integer number of minor units within range")
		}
		it.Amount = n
		return nil
	},
}

// readCSVItems reads a CSV body: a header row, then one item per row.
func readCSVItems(c *gin.Context, itemsMax int) ([]batchItemRequest, []int, *httperr.Error) {
	r := csv.NewReader(http.MaxBytesReader(c.Writer, c.Request.Body, batchBodyBytesMax))
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil {
		return nil, nil, csvProblem(err, "The CSV body needs a header row naming its columns.")
	}
	header = slices.Clone(header) // ReuseRecord: later reads overwrite it
	setters := make([]func(*batchItemRequest, string) error, len(header))
	seen := map[string]bool{}
	var v validate.Validator
	for i, name := range header {
		name = strings.TrimPrefix(name, "\ufeff") // a spreadsheet's byte order mark
		header[i] = name
		setters[i] = csvColumns[name]
		switch {
		case setters[i] == nil:
			v.Add("header", fmt.Sprintf("column %d %q is not one of referenceId, walletId, consumerExternalId, type, amount, currency, campaignId, description", i+1, name))
		case seen[name]:
			v.Add("header", fmt.Sprintf("column %q appears twice", name))
		}
		seen[name] = true
	}
	if p := v.Err(); p != nil {
		return nil, nil, p
	}
	var (
		items []batchItemRequest
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
		var it batchItemRequest
		for i, value := range record {
			if err := setters[i](&it, value); err != nil {
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

func (a *API) getBatch(c *gin.Context) {
	b, err := a.ledger.Batch(c, wsID(c), c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, b)
}

func (a *API) listBatches(c *gin.Context) {
	listPage(a, c, validate.IDKey("bat"), func(b ledger.Batch) string { return b.ID }, func(after string, limit int) ([]ledger.Batch, error) {
		return a.ledger.Batches(c, wsID(c), after, limit)
	})
}

// listBatchTransactions lists a batch's items, e.g. ?status=failed.
func (a *API) listBatchTransactions(c *gin.Context) {
	if _, err := a.ledger.Batch(c, wsID(c), c.Param("id")); err != nil {
		a.fail(c, err)
		return
	}
	a.listTransactionsWhere(c, ledger.TransactionFilter{BatchID: c.Param("id")})
}
