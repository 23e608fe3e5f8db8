package partnerapi

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/httperr"
	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/logging"
	"github.com/orbt/orbt/server"
	"github.com/orbt/orbt/validate"
)

// Transaction types and statuses as Orbt's API spells them.
const (
	typeCredit      = "CREDIT"
	typeDebit       = "DEBIT"
	statusCompleted = "COMPLETED"
	statusPending   = "PENDING"
)

// transactionResult is what a credit or debit answers.
type transactionResult struct {
	TransactionID   string          `json:"transactionId"`
	WalletID        string          `json:"walletId"`
	ReferenceID     string          `json:"referenceId"`
	TransactionType string          `json:"transactionType"`
	Amount          json.Number     `json:"amount"`
	WalletBalance   json.Number     `json:"walletBalance"`
	Currency        ledger.Currency `json:"currency"`
	Status          string          `json:"status"`
}

// createTransaction credits or debits a wallet through the native path
// (deduplicated by referenceId like any transaction) and waits for the
// outcome: 200 with the balance the transaction left, 402 when a balance
// or budget refused it, 202 when it is not final within the wait. A replay
// answers the original's outcome; a referenceId reused with another
// payload is a 403, as Orbt documents.
func (p *API) createTransaction(c *gin.Context) {
	var req struct {
		Amount          json.RawMessage `json:"amount"`
		TransactionType string          `json:"transactionType"`
		ReferenceID     string          `json:"referenceId"`
		Description     *string         `json:"description"`
	}
	if !bind(c, &req) {
		return
	}
	ws := wsID(c)
	w, err := p.ledger.Wallet(c, ws, c.Param("walletId"))
	if err != nil {
		p.fail(c, err)
		return
	}
	var v validate.Validator
	amount := v.MajorAmount("amount", req.Amount, w.Currency, true, false)
	v.OneOf("transactionType", req.TransactionType, typeCredit, typeDebit)
	v.Token("referenceId", req.ReferenceID, validate.ReferenceIDLenMax)
	v.OptText("description", req.Description, validate.DescriptionLenMax)
	if !valid(c, &v) {
		return
	}
	typ := ledger.TypeCredit
	if req.TransactionType == typeDebit {
		typ = ledger.TypeDebit
	}
	txn, replayed, err := p.submit(c, ledger.TransactionRequest{WorkspaceID: ws, ReferenceID: req.ReferenceID,
		Type: typ, WalletID: w.ID, Amount: amount, Currency: w.Currency, Description: req.Description})
	if err != nil {
		p.refuseConflict(c, err)
		return
	}
	server.LogID(c, logging.TransactionID, txn.ID)
	server.Replayed(c, replayed)
	out := transactionResult{TransactionID: txn.ID, WalletID: w.ID, ReferenceID: txn.ReferenceID,
		TransactionType: req.TransactionType, Amount: major(w.Currency, txn.Amount), Currency: w.Currency}
	switch txn.Status {
	case ledger.StatusCompleted:
		balance, err := p.ledger.BalanceAfter(c, txn)
		if err != nil {
			p.fail(c, err)
			return
		}
		out.WalletBalance, out.Status = major(w.Currency, balance), statusCompleted
		ok(c, http.StatusOK, out)
	case ledger.StatusFailed:
		refuse(c, txn, 0)
	default:
		// Not final yet: the balance it will change, as it is now.
		out.WalletBalance, out.Status = major(w.Currency, w.Balance), statusPending
		ok(c, http.StatusAccepted, out)
	}
}

// submit accepts a credit or debit through the native path and waits for
// its outcome (awaitOutcome).
func (p *API) submit(c *gin.Context, tr ledger.TransactionRequest) (ledger.Transaction, bool, error) {
	txn, replayed, err := p.ledger.Submit(c, tr)
	if err != nil {
		return ledger.Transaction{}, false, err
	}
	return p.awaitOutcome(c, txn, replayed), replayed, nil
}

// awaitOutcome wakes the worker for an accepted transaction (not for a
// replay: the original's wake-up went out, and the relay covers its loss)
// and waits for its outcome through the process's one outcome listener,
// as "Prefer: wait" does. It returns the transaction as it is when the
// wait ends: still pending when it was not applied in time.
func (p *API) awaitOutcome(c *gin.Context, txn ledger.Transaction, replayed bool) ledger.Transaction {
	if !replayed && txn.Status == ledger.StatusPending {
		p.queue.TransactionAccepted(c, txn.ID, txn.LaneID())
	}
	final, err := p.ledger.AwaitFinal(c, server.WorkspaceID(c), txn, p.outcomeWait(c))
	if err != nil {
		// It was accepted and will be applied: say so (202), not 5xx, so
		// the client does not take an accepted credit for a lost one.
		p.log.Warn("await outcome", "err", err, "transaction", txn.ID)
		return txn
	}
	return final
}

// refusals say in a sentence why a transaction moved no money.
var refusals = map[string]string{
	ledger.ReasonInsufficientFunds:        "The wallet balance cannot cover this debit.",
	ledger.ReasonInsufficientPartnerFunds: "The partner balance cannot cover this credit.",
	ledger.ReasonCampaignBudgetExceeded:   "The campaign's budget cannot cover this credit.",
	ledger.ReasonCampaignInactive:         "The wallet's campaign is not active.",
	ledger.ReasonCurrencyMismatch:         "The currency differs from the wallet's.",
	ledger.ReasonWalletClosed:             "The wallet is closed.",
}

// refuse answers a failed transaction: 402, a business rule refused it
// and no money moved. customerID names the customer a create made.
func refuse(c *gin.Context, txn ledger.Transaction, customerID int64) {
	reason := deref(txn.FailureReason)
	message, known := refusals[reason]
	if !known {
		message = "The transaction was refused; no money moved."
	}
	renderError(c, http.StatusPaymentRequired, codeBusinessRule, message,
		&errorDetails{Reason: reason, CustomerID: customerID, WalletID: deref(txn.WalletID), TransactionID: txn.ID}, 0)
}

// refuseConflict answers a submission the ledger refused: a referenceId
// reused with another payload is a 403, as Orbt documents; anything else
// as the native API classifies it.
func (p *API) refuseConflict(c *gin.Context, err error) {
	e := httperr.Classify(err)
	if e.Code != "idempotency_conflict" {
		p.fail(c, err)
		return
	}
	fields := make([]httperr.FieldError, len(e.Fields))
	for i, f := range e.Fields {
		if f.Field == "type" {
			f.Field = "transactionType"
		}
		fields[i] = f
	}
	renderError(c, http.StatusForbidden, codeBusinessRule, e.Detail,
		&errorDetails{Reason: e.Code, Fields: fields}, 0)
}
