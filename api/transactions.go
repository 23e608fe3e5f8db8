package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/httperr"
	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/logging"
	"github.com/orbt/orbt/server"
	"github.com/orbt/orbt/validate"
)

type transactionRequest struct {
	ReferenceID string            `json:"referenceId"`
	Type        string            `json:"type"`
	WalletID    string            `json:"walletId"`
	Amount      int64             `json:"amount"`
	Currency    string            `json:"currency"`
	Description *string           `json:"description"`
	Metadata    map[string]string `json:"metadata"`
}

func (r transactionRequest) validate(v *validate.Validator) ledger.TransactionRequest {
	v.Token("referenceId", r.ReferenceID, validate.ReferenceIDLenMax)
	v.OneOf("type", r.Type, ledger.TypeCredit, ledger.TypeDebit)
	v.Token("walletId", r.WalletID, validate.IDLenMax)
	v.Amount("amount", r.Amount)
	cur := v.Currency("currency", r.Currency)
	v.OptText("description", r.Description, validate.DescriptionLenMax)
	v.Metadata("metadata", r.Metadata)
	meta := r.Metadata
	if len(meta) == 0 {
		meta = nil // absent and empty are the same payload
	}
	return ledger.TransactionRequest{ReferenceID: r.ReferenceID, Type: r.Type, WalletID: r.WalletID,
		Amount: r.Amount, Currency: cur, Description: r.Description, Metadata: meta}
}

// createTransaction commits a credit or debit, answers 202, and hands it to
// the worker. A replay answers the original.
func (a *API) createTransaction(c *gin.Context) {
	var req transactionRequest
	if !bind(c, &req, validate.BodyBytesMax) {
		return
	}
	var v validate.Validator
	tr := req.validate(&v)
	if !valid(c, &v) {
		return
	}
	tr.WorkspaceID = wsID(c)
	a.accept(c, tr, "walletId")
}

// accept stores a money movement, answers 202 with it, and wakes the worker
// for its lane; walletField names the request field of its wallet, if any.
// With "Prefer: wait=N" it waits up to N seconds for the outcome and
// answers 200 with the final transaction when there is one by then.
func (a *API) accept(c *gin.Context, tr ledger.TransactionRequest, walletField string) {
	txn, replay, err := a.ledger.Submit(c, tr)
	if err != nil {
		if walletField != "" {
			err = httperr.OnField(walletField, err)
		}
		a.fail(c, err)
		return
	}
	if !replay && txn.Status == ledger.StatusPending {
		// A replay's own wake-up went out with the original; should it
		// have been lost, the relay finds the transaction.
		a.queue.TransactionAccepted(c, txn.ID, txn.LaneID())
	}
	server.LogID(c, logging.TransactionID, txn.ID)
	server.Replayed(c, replay)
	a.accepted.WithLabelValues(strconv.FormatBool(replay)).Inc()
	answerAccepted(c, txn, func(wait time.Duration) (any, bool) {
		final, err := a.ledger.AwaitFinal(c, tr.WorkspaceID, txn, wait)
		return final, err == nil && final.Status != ledger.StatusPending
	})
}

// answerAccepted answers an accepted money movement: 202 with it, or, when
// the request asked to wait (Prefer: wait=N) and await finds it final
// within N seconds, 200 with the final object.
func answerAccepted(c *gin.Context, accepted any, await func(wait time.Duration) (final any, ok bool)) {
	if wait := validate.PreferWait(c.Request.Header); wait > 0 {
		if final, ok := await(wait); ok {
			c.Header("Preference-Applied", "wait="+strconv.Itoa(int(wait/time.Second)))
			c.JSON(http.StatusOK, final)
			return
		}
	}
	c.JSON(http.StatusAccepted, accepted)
}

func (a *API) getTransaction(c *gin.Context) {
	txn, err := a.ledger.Transaction(c, wsID(c), c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, txn)
}

func (a *API) listTransactions(c *gin.Context) {
	a.listTransactionsWhere(c, ledger.TransactionFilter{})
}

// listTransactionsWhere lists transactions matching the query's filters
// within the given ones (a batch's items, say).
func (a *API) listTransactionsWhere(c *gin.Context, f ledger.TransactionFilter) {
	listPage(a, c, validate.IDKey("txn"), func(t ledger.Transaction) string { return t.ID }, func(after string, limit int) ([]ledger.Transaction, error) {
		var v validate.Validator
		f.WalletID = v.QueryToken(c.Request, "walletId")
		f.ReferenceID = v.QueryToken(c.Request, "referenceId")
		if f.BatchID == "" {
			f.BatchID = v.QueryToken(c.Request, "batchId")
		}
		f.Status = c.Query("status")
		if f.Status != "" {
			v.OneOf("status", f.Status, ledger.StatusPending, ledger.StatusCompleted, ledger.StatusFailed)
		}
		if e := v.Err(); e != nil {
			return nil, e
		}
		return a.ledger.Transactions(c, wsID(c), f, after, limit)
	})
}
