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

	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/tasks"
	"github.com/orbt/orbt/workspace"
)

// Limits of bulk payouts.
const (
	batchBodyBytesMax = 8 << 20 // 8 MiB
	// batchItemsMaxDefault applies when Options.BatchItemsMax is unset.
	batchItemsMaxDefault = 10_000
	// itemErrorsMax bounds the per-item errors one refusal lists.
	itemErrorsMax = 500
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
func (s *Server) createBatch(c *gin.Context) {
	req, p := s.readBatch(c)
	if p != nil {
		abort(c, p)
		return
	}
	req.WorkspaceID = wsID(c)
	sub, err := s.ledger.SubmitBatch(c, req, workspace.EnsureConsumers)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	for _, lane := range sub.Lanes {
		task, err := tasks.NewLaneApply(lane, fmt.Sprintf("batch:%s:%d", sub.Batch.ID, lane))
		s.enqueue(c, task, err)
	}
	for _, id := range sub.Deliveries {
		task, err := tasks.NewWebhookDeliver(id, id+":1", time.Time{})
		s.enqueue(c, task, err)
	}
	if sub.Replayed {
		c.Header("Idempotent-Replayed", "true")
	}
	c.JSON(http.StatusAccepted, sub.Batch)
}

// readBatch reads a JSON or CSV batch and validates every item, so a
// malformed item refuses the whole batch with all the errors at once.
func (s *Server) readBatch(c *gin.Context) (ledger.BatchRequest, *problem) {
	itemsMax := s.opts.BatchItemsMax
	if itemsMax <= 0 {
		itemsMax = batchItemsMaxDefault
	}
	mediaType, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type"))
	var (
		req   batchRequest
		lines []int // CSV line of each item, for error messages
		v     validator
	)
	switch mediaType {
	case "text/csv":
		var p *problem
		req.ReferenceID = c.GetHeader("Idempotency-Key")
		v.token("Idempotency-Key", req.ReferenceID, referenceIDLenMax)
		req.Items, lines, p = readCSVItems(c, itemsMax)
		if p != nil {
			return ledger.BatchRequest{}, p
		}
	default: // JSON, whatever the client called it (curl -d sends a form type)
		if p := decodeJSONLimit(c, &req, batchBodyBytesMax); p != nil {
			return ledger.BatchRequest{}, p
		}
		v.token("referenceId", req.ReferenceID, referenceIDLenMax)
	}
	switch {
	case len(req.Items) == 0:
		v.add("items", "must hold at least one item")
	case len(req.Items) > itemsMax:
		v.add("items", fmt.Sprintf("must hold at most %d items", itemsMax))
	}
	if p := v.problem(); p != nil {
		return ledger.BatchRequest{}, p
	}

	out := ledger.BatchRequest{ReferenceID: req.ReferenceID, Items: make([]ledger.BatchItem, len(req.Items))}
	var errs []fieldError
	for i, it := range req.Items {
		var iv validator
		out.Items[i] = it.validate(&iv)
		for _, e := range iv.errs {
			errs = append(errs, itemError(i, e.Field, e.Message, lines))
		}
	}
	if len(errs) > 0 {
		return ledger.BatchRequest{}, itemsProblem(http.StatusBadRequest, "validation_error",
			"Some items are invalid; nothing was stored.", errs)
	}
	return out, nil
}

func (r batchItemRequest) validate(v *validator) ledger.BatchItem {
	v.token("referenceId", r.ReferenceID, referenceIDLenMax)
	v.oneOf("type", r.Type, ledger.TypeCredit, ledger.TypeDebit)
	switch {
	case r.WalletID != "" && r.ConsumerExternalID != "":
		v.add("walletId", "give walletId or consumerExternalId, not both")
	case r.WalletID != "":
		v.token("walletId", r.WalletID, idLenMax)
		if r.CampaignID != "" {
			v.add("campaignId", "goes with consumerExternalId; a walletId already names its campaign")
		}
	case r.ConsumerExternalID != "":
		v.token("consumerExternalId", r.ConsumerExternalID, referenceIDLenMax)
		if r.CampaignID != "" {
			v.token("campaignId", r.CampaignID, idLenMax)
		}
	default:
		v.add("walletId", "is required, or consumerExternalId")
	}
	v.amount("amount", r.Amount)
	cur := v.currency("currency", r.Currency)
	v.optText("description", r.Description, descriptionLenMax)
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
func readCSVItems(c *gin.Context, itemsMax int) ([]batchItemRequest, []int, *problem) {
	r := csv.NewReader(http.MaxBytesReader(c.Writer, c.Request.Body, batchBodyBytesMax))
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil {
		return nil, nil, csvProblem(err, "The CSV body needs a header row naming its columns.")
	}
	header = slices.Clone(header) // ReuseRecord: later reads overwrite it
	setters := make([]func(*batchItemRequest, string) error, len(header))
	seen := map[string]bool{}
	var v validator
	for i, name := range header {
		name = strings.TrimPrefix(name, "\ufeff") // a spreadsheet's byte order mark
		header[i] = name
		setters[i] = csvColumns[name]
		switch {
		case setters[i] == nil:
			v.add("header", fmt.Sprintf("column %d %q is not one of referenceId, walletId, consumerExternalId, type, amount, currency, campaignId, description", i+1, name))
		case seen[name]:
			v.add("header", fmt.Sprintf("column %q appears twice", name))
		}
		seen[name] = true
	}
	if p := v.problem(); p != nil {
		return nil, nil, p
	}
	var (
		items []batchItemRequest
		lines []int
		errs  []fieldError
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
			return nil, nil, validationProblem([]fieldError{{Field: "items", Message: fmt.Sprintf("must hold at most %d items", itemsMax)}})
		}
		line, _ := r.FieldPos(0)
		var it batchItemRequest
		for i, value := range record {
			if err := setters[i](&it, value); err != nil {
				errs = append(errs, fieldError{Field: fmt.Sprintf("items[%d].%s", len(items), header[i]), Message: err.Error(),
					Item: ptr(len(items)), Line: line})
			}
		}
		items = append(items, it)
		lines = append(lines, line)
	}
	if len(errs) > 0 {
		return nil, nil, itemsProblem(http.StatusBadRequest, "validation_error", "Some rows are invalid; nothing was stored.", errs)
	}
	return items, lines, nil
}

func csvProblem(err error, detail string) *problem {
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return newProblem(http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("The body is larger than %d bytes.", maxErr.Limit))
	}
	if detail == "" || !errors.Is(err, io.EOF) {
		detail = "The body is not valid CSV: " + err.Error()
	}
	return newProblem(http.StatusBadRequest, "invalid_csv", detail)
}

// itemError names a field of one item, with its CSV line when it came from one.
func itemError(item int, field, msg string, lines []int) fieldError {
	e := fieldError{Field: fmt.Sprintf("items[%d].%s", item, field), Message: msg, Item: ptr(item)}
	if item < len(lines) {
		e.Line = lines[item]
	}
	return e
}

// itemsProblem lists per-item errors, at most itemErrorsMax of them.
func itemsProblem(status int, code, detail string, errs []fieldError) *problem {
	if len(errs) > itemErrorsMax {
		detail += fmt.Sprintf(" The first %d of %d errors are listed.", itemErrorsMax, len(errs))
		errs = errs[:itemErrorsMax]
	}
	return newProblem(status, code, detail, errs...)
}

func ptr[T any](v T) *T { return &v }

func (s *Server) getBatch(c *gin.Context) {
	b, err := s.ledger.Batch(c, wsID(c), c.Param("id"))
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, b)
}

func (s *Server) listBatches(c *gin.Context) {
	pg, p := readPage(c)
	if p != nil {
		abort(c, p)
		return
	}
	batches, err := s.ledger.Batches(c, wsID(c), pg.cursor, pg.limit+1)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, pageOf(batches, pg.limit, func(b ledger.Batch) string { return b.ID }))
}

// listBatchTransactions lists a batch's items, e.g. ?status=failed.
func (s *Server) listBatchTransactions(c *gin.Context) {
	if _, err := s.ledger.Batch(c, wsID(c), c.Param("id")); err != nil {
		fail(c, s.log, err)
		return
	}
	s.listTransactionsWhere(c, ledger.TransactionFilter{BatchID: c.Param("id")})
}
