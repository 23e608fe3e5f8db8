package api

import (
	"mime"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/batchreq"
	"github.com/orbt/orbt/httperr"
	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/logging"
	"github.com/orbt/orbt/server"
	"github.com/orbt/orbt/validate"
	"github.com/orbt/orbt/workspace"
)

// batchRequestTimeout bounds a bulk payout's request: up to 10,000 items
// written in one database transaction, seconds of work when several
// arrive at once.
const batchRequestTimeout = time.Minute

type batchRequest struct {
	ReferenceID string          `json:"referenceId"`
	Items       []batchreq.Item `json:"items"`
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
	server.LogID(c, logging.BatchID, sub.Batch.ID)
	a.queue.BatchLanes(c, sub.Batch.ID, sub.Lanes)
	a.queue.Deliveries(c, sub.Deliveries)
	server.Replayed(c, sub.Replayed)
	c.JSON(http.StatusAccepted, sub.Batch)
}

// readBatch reads a JSON or CSV batch and validates every item, so a
// malformed item refuses the whole batch with all the errors at once.
func (a *API) readBatch(c *gin.Context) (ledger.BatchRequest, *httperr.Error) {
	itemsMax := a.opts.BatchItemsMax // New defaults it
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
		req.Items, lines, p = batchreq.ReadCSV(http.MaxBytesReader(c.Writer, c.Request.Body, batchreq.BodyBytesMax), itemsMax, batchreq.MinorUnits)
		if p != nil {
			return ledger.BatchRequest{}, p
		}
	default: // JSON, whatever the client called it (curl -d sends a form type)
		if p := validate.DecodeJSON(c.Writer, c.Request, &req, batchreq.BodyBytesMax); p != nil {
			return ledger.BatchRequest{}, p
		}
		v.Token("referenceId", req.ReferenceID, validate.ReferenceIDLenMax)
	}
	items, p := batchreq.Validate(&v, req.Items, lines, itemsMax)
	if p != nil {
		return ledger.BatchRequest{}, p
	}
	return ledger.BatchRequest{ReferenceID: req.ReferenceID, Items: items}, nil
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
