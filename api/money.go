package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/ledger"
)

// --- campaigns ---

type campaignRequest struct {
	Name          *string   `json:"name"`
	Currency      string    `json:"currency"`
	Status        *string   `json:"status"`
	Budget        *int64    `json:"budget"`
	StartsAt      *string   `json:"startsAt"`
	EndsAt        *string   `json:"endsAt"`
	AllowedBrands *[]string `json:"allowedBrands"`
}

// fields validates the settable fields; statuses lists what status may be.
func (r campaignRequest) fields(v *validator, statuses ...string) ledger.CampaignFields {
	v.optText("name", r.Name, nameLenMax)
	if r.Status != nil {
		v.oneOf("status", *r.Status, statuses...)
	}
	if r.Budget != nil {
		v.amount("budget", *r.Budget)
	}
	f := ledger.CampaignFields{Name: r.Name, Status: r.Status, Budget: r.Budget,
		StartsAt: v.time("startsAt", r.StartsAt), EndsAt: v.time("endsAt", r.EndsAt), AllowedBrands: r.AllowedBrands}
	if f.StartsAt != nil && f.EndsAt != nil && !f.StartsAt.Before(*f.EndsAt) {
		v.add("endsAt", "must be after startsAt")
	}
	if r.AllowedBrands != nil {
		if len(*r.AllowedBrands) > brandsMax {
			v.add("allowedBrands", "must list at most 100 brands")
		}
		for _, b := range *r.AllowedBrands {
			v.token("allowedBrands", b, idLenMax)
		}
	}
	return f
}

func (s *Server) createCampaign(c *gin.Context) {
	var req campaignRequest
	if p := decodeJSON(c, &req); p != nil {
		abort(c, p)
		return
	}
	var v validator
	if req.Name == nil {
		v.add("name", "is required")
	}
	cur := v.currency("currency", req.Currency)
	f := req.fields(&v, ledger.CampaignActive, ledger.CampaignPaused)
	if p := v.problem(); p != nil {
		abort(c, p)
		return
	}
	campaign, err := s.ledger.CreateCampaign(c, wsID(c), cur, f)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusCreated, campaign)
}

func (s *Server) listCampaigns(c *gin.Context) {
	pg, p := readPage(c)
	if p != nil {
		abort(c, p)
		return
	}
	campaigns, err := s.ledger.Campaigns(c, wsID(c), pg.cursor, pg.limit+1)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, pageOf(campaigns, pg.limit, func(x ledger.Campaign) string { return x.ID }))
}

func (s *Server) getCampaign(c *gin.Context) {
	campaign, err := s.ledger.Campaign(c, wsID(c), c.Param("id"))
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, campaign)
}

func (s *Server) updateCampaign(c *gin.Context) {
	var req campaignRequest
	if p := decodeJSON(c, &req); p != nil {
		abort(c, p)
		return
	}
	var v validator
	if req.Currency != "" {
		v.add("currency", "cannot be changed")
	}
	f := req.fields(&v, ledger.CampaignActive, ledger.CampaignPaused, ledger.CampaignEnded)
	if p := v.problem(); p != nil {
		abort(c, p)
		return
	}
	campaign, err := s.ledger.UpdateCampaign(c, wsID(c), c.Param("id"), f)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, campaign)
}

// --- transactions ---

type transactionRequest struct {
	ReferenceID string            `json:"referenceId"`
	Type        string            `json:"type"`
	WalletID    string            `json:"walletId"`
	Amount      int64             `json:"amount"`
	Currency    string            `json:"currency"`
	Description *string           `json:"description"`
	Metadata    map[string]string `json:"metadata"`
}

func (r transactionRequest) validate(v *validator, prefix string) ledger.TransactionRequest {
	v.token(prefix+"referenceId", r.ReferenceID, referenceIDLenMax)
	v.oneOf(prefix+"type", r.Type, ledger.TypeCredit, ledger.TypeDebit)
	v.token(prefix+"walletId", r.WalletID, idLenMax)
	v.amount(prefix+"amount", r.Amount)
	cur := v.currency(prefix+"currency", r.Currency)
	v.optText(prefix+"description", r.Description, descriptionLenMax)
	v.metadata(prefix+"metadata", r.Metadata)
	meta := r.Metadata
	if len(meta) == 0 {
		meta = nil // absent and empty are the same payload
	}
	return ledger.TransactionRequest{ReferenceID: r.ReferenceID, Type: r.Type, WalletID: r.WalletID,
		Amount: r.Amount, Currency: cur, Description: r.Description, Metadata: meta}
}

// createTransaction commits the transaction, answers 202, and hands it to
// the worker. A replay answers the original.
func (s *Server) createTransaction(c *gin.Context) {
	var req transactionRequest
	if p := decodeJSON(c, &req); p != nil {
		abort(c, p)
		return
	}
	var v validator
	tr := req.validate(&v, "")
	if p := v.problem(); p != nil {
		abort(c, p)
		return
	}
	tr.WorkspaceID = wsID(c)
	txn, replayed, err := s.ledger.Submit(c, tr)
	if err != nil {
		fail(c, s.log, onField("walletId", err))
		return
	}
	if !replayed {
		// A replay's own wake-up went out with the original; should it
		// have been lost, the relay finds the transaction.
		s.enqueueTransaction(c, txn)
	}
	if replayed {
		c.Header("Idempotent-Replayed", "true")
	}
	s.metrics.accepted.WithLabelValues(boolLabel(replayed)).Inc()
	c.JSON(http.StatusAccepted, txn)
}

func boolLabel(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func (s *Server) getTransaction(c *gin.Context) {
	txn, err := s.ledger.Transaction(c, wsID(c), c.Param("id"))
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, txn)
}

func (s *Server) listTransactions(c *gin.Context) {
	s.listTransactionsWhere(c, ledger.TransactionFilter{})
}

// listTransactionsWhere lists transactions matching the query's filters
// within the given ones (a batch's items, say).
func (s *Server) listTransactionsWhere(c *gin.Context, f ledger.TransactionFilter) {
	pg, p := readPage(c)
	if p != nil {
		abort(c, p)
		return
	}
	var v validator
	f.WalletID = queryToken(c, &v, "walletId")
	f.ReferenceID = queryToken(c, &v, "referenceId")
	if f.BatchID == "" {
		f.BatchID = queryToken(c, &v, "batchId")
	}
	f.Status = c.Query("status")
	if f.Status != "" {
		v.oneOf("status", f.Status, ledger.StatusPending, ledger.StatusCompleted, ledger.StatusFailed)
	}
	if p := v.problem(); p != nil {
		abort(c, p)
		return
	}
	txns, err := s.ledger.Transactions(c, wsID(c), f, pg.cursor, pg.limit+1)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, pageOf(txns, pg.limit, func(t ledger.Transaction) string { return t.ID }))
}

// --- events ---

func (s *Server) listEvents(c *gin.Context) {
	pg, p := readPage(c)
	if p != nil {
		abort(c, p)
		return
	}
	var v validator
	eventType := queryToken(c, &v, "type")
	after := queryToken(c, &v, "after")
	if after == "" {
		after = pg.cursor
	}
	if p := v.problem(); p != nil {
		abort(c, p)
		return
	}
	events, err := s.ledger.Events(c, wsID(c), eventType, after, pg.limit+1)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, pageOf(events, pg.limit, func(e ledger.Event) string { return e.ID }))
}

func (s *Server) getEvent(c *gin.Context) {
	e, err := s.ledger.Event(c, wsID(c), c.Param("id"))
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, e)
}
