package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/workspace"
)

func (s *Server) healthz(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) }

// readyz reports whether Postgres and Redis answer.
func (s *Server) readyz(c *gin.Context) {
	var down []string
	if err := s.ledger.Pool().Ping(c); err != nil {
		down = append(down, "postgres: "+err.Error())
	}
	if s.opts.Redis != nil {
		if err := s.opts.Redis.Ping(c).Err(); err != nil {
			down = append(down, "redis: "+err.Error())
		}
	}
	if len(down) > 0 {
		p := newProblem(http.StatusServiceUnavailable, "not_ready", strings.Join(down, "; "))
		p.retryAfter = retryAfterSeconds
		abort(c, p)
		return
	}
	c.JSON(http.StatusOK, gin.H{"postgres": "ok", "redis": "ok"})
}

// --- admin ---

func (s *Server) adminCreateWorkspace(c *gin.Context) {
	var req struct {
		Name string `json:"name"`
	}
	if p := decodeJSON(c, &req); p != nil {
		abort(c, p)
		return
	}
	var v validator
	v.text("name", req.Name, true, nameLenMax)
	if p := v.problem(); p != nil {
		abort(c, p)
		return
	}
	created, err := s.ws.CreateWorkspace(c, req.Name)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusCreated, created)
}

func (s *Server) adminFund(c *gin.Context) {
	var req struct {
		ReferenceID string `json:"referenceId"`
		Currency    string `json:"currency"`
		Amount      int64  `json:"amount"`
	}
	if p := decodeJSON(c, &req); p != nil {
		abort(c, p)
		return
	}
	var v validator
	v.token("referenceId", req.ReferenceID, referenceIDLenMax)
	cur := v.currency("currency", req.Currency)
	v.amount("amount", req.Amount)
	if p := v.problem(); p != nil {
		abort(c, p)
		return
	}
	if _, err := s.ws.Workspace(c, c.Param("id")); err != nil {
		fail(c, s.log, err)
		return
	}
	txn, replayed, err := s.ledger.Fund(c, c.Param("id"), req.ReferenceID, cur, req.Amount)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	if replayed {
		c.Header("Idempotent-Replayed", "true")
	}
	c.JSON(http.StatusCreated, txn)
}

// --- workspace and keys ---

func (s *Server) getWorkspace(c *gin.Context) {
	w, err := s.ws.Workspace(c, wsID(c))
	if err != nil {
		fail(c, s.log, err)
		return
	}
	balances, err := s.ledger.PartnerBalances(c, w.ID)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	if balances == nil {
		balances = []ledger.Balance{}
	}
	c.JSON(http.StatusOK, gin.H{"id": w.ID, "name": w.Name, "createdAt": w.CreatedAt, "balances": balances})
}

func (s *Server) createKey(c *gin.Context) {
	var req struct {
		Name  string `json:"name"`
		Scope string `json:"scope"`
	}
	if p := decodeJSON(c, &req); p != nil {
		abort(c, p)
		return
	}
	var v validator
	v.text("name", req.Name, true, nameLenMax)
	v.oneOf("scope", req.Scope, workspace.ScopeRead, workspace.ScopeWrite)
	if p := v.problem(); p != nil {
		abort(c, p)
		return
	}
	key, err := s.ws.CreateKey(c, wsID(c), req.Name, req.Scope)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusCreated, key)
}

func (s *Server) listKeys(c *gin.Context) {
	pg, p := readPage(c)
	if p != nil {
		abort(c, p)
		return
	}
	keys, err := s.ws.Keys(c, wsID(c), pg.cursor, pg.limit+1)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, pageOf(keys, pg.limit, func(k workspace.APIKey) string { return k.ID }))
}

func (s *Server) revokeKey(c *gin.Context) {
	if err := s.ws.RevokeKey(c, wsID(c), c.Param("id")); err != nil {
		fail(c, s.log, err)
		return
	}
	s.forget(c.Param("id"))
	c.Status(http.StatusNoContent)
}

// --- consumers ---

type consumerRequest struct {
	ExternalID string            `json:"externalId"`
	Email      *string           `json:"email"`
	Name       *string           `json:"name"`
	Metadata   map[string]string `json:"metadata"`
}

func (s *Server) createConsumer(c *gin.Context) {
	var req consumerRequest
	if p := decodeJSON(c, &req); p != nil {
		abort(c, p)
		return
	}
	var v validator
	v.token("externalId", req.ExternalID, referenceIDLenMax)
	v.email("email", req.Email)
	v.optText("name", req.Name, nameLenMax)
	v.metadata("metadata", req.Metadata)
	if p := v.problem(); p != nil {
		abort(c, p)
		return
	}
	consumer, err := s.ws.CreateConsumer(c, wsID(c), workspace.Consumer{
		ExternalID: req.ExternalID, Email: req.Email, Name: req.Name, Metadata: req.Metadata})
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusCreated, consumer)
}

func (s *Server) listConsumers(c *gin.Context) {
	pg, p := readPage(c)
	if p != nil {
		abort(c, p)
		return
	}
	var v validator
	externalID := queryToken(c, &v, "externalId")
	if p := v.problem(); p != nil {
		abort(c, p)
		return
	}
	consumers, err := s.ws.Consumers(c, wsID(c), externalID, pg.cursor, pg.limit+1)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, pageOf(consumers, pg.limit, func(x workspace.Consumer) string { return x.ID }))
}

func (s *Server) getConsumer(c *gin.Context) {
	consumer, err := s.ws.Consumer(c, wsID(c), c.Param("id"))
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, consumer)
}

func (s *Server) updateConsumer(c *gin.Context) {
	var req struct {
		Email    *string           `json:"email"`
		Name     *string           `json:"name"`
		Metadata map[string]string `json:"metadata"`
	}
	if p := decodeJSON(c, &req); p != nil {
		abort(c, p)
		return
	}
	var v validator
	v.email("email", req.Email)
	v.optText("name", req.Name, nameLenMax)
	v.metadata("metadata", req.Metadata)
	if p := v.problem(); p != nil {
		abort(c, p)
		return
	}
	consumer, err := s.ws.UpdateConsumer(c, wsID(c), c.Param("id"),
		workspace.ConsumerUpdate{Email: req.Email, Name: req.Name, Metadata: req.Metadata})
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, consumer)
}

// --- wallets ---

func (s *Server) createWallet(c *gin.Context) {
	var req struct {
		Currency   string  `json:"currency"`
		Type       string  `json:"type"`
		CampaignID *string `json:"campaignId"`
	}
	if p := decodeJSON(c, &req); p != nil {
		abort(c, p)
		return
	}
	var v validator
	cur := v.currency("currency", req.Currency)
	v.oneOf("type", req.Type, ledger.WalletStandard, ledger.WalletCampaign)
	switch {
	case req.Type == ledger.WalletCampaign && req.CampaignID == nil:
		v.add("campaignId", "is required for a campaign wallet")
	case req.Type == ledger.WalletStandard && req.CampaignID != nil:
		v.add("campaignId", "must be absent for a standard wallet")
	case req.CampaignID != nil:
		v.token("campaignId", *req.CampaignID, idLenMax)
	}
	if p := v.problem(); p != nil {
		abort(c, p)
		return
	}
	w, err := s.ledger.CreateWallet(c, wsID(c), c.Param("id"), req.Type, cur, req.CampaignID)
	if err != nil {
		fail(c, s.log, onField("campaignId", err))
		return
	}
	c.JSON(http.StatusCreated, w)
}

func (s *Server) listWallets(c *gin.Context) {
	pg, p := readPage(c)
	if p != nil {
		abort(c, p)
		return
	}
	if _, err := s.ws.Consumer(c, wsID(c), c.Param("id")); err != nil {
		fail(c, s.log, err)
		return
	}
	wallets, err := s.ledger.ConsumerWallets(c, wsID(c), c.Param("id"), pg.cursor, pg.limit+1)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, pageOf(wallets, pg.limit, func(w ledger.Wallet) string { return w.ID }))
}

func (s *Server) getWallet(c *gin.Context) {
	w, err := s.ledger.Wallet(c, wsID(c), c.Param("id"))
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, w)
}

func (s *Server) walletStatement(c *gin.Context) {
	pg, p := readPage(c)
	if p != nil {
		abort(c, p)
		return
	}
	var cursor int64
	if pg.cursor != "" {
		n, err := strconv.ParseInt(pg.cursor, 10, 64)
		if err != nil || n <= 0 {
			abort(c, validationProblem([]fieldError{{Field: "cursor", Message: "is not a cursor this list returned"}}))
			return
		}
		cursor = n
	}
	lines, err := s.ledger.Statement(c, wsID(c), c.Param("id"), cursor, pg.limit+1)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, pageOf(lines, pg.limit, func(l ledger.StatementLine) string { return strconv.FormatInt(l.EntryID, 10) }))
}
