package partnerapi

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/httperr"
	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/validate"
	"github.com/orbt/orbt/workspace"
)

// createdCustomer is what creating a customer answers: the customer with
// its new wallet.
type createdCustomer struct {
	ID            int64           `json:"id"`
	WalletID      string          `json:"walletId"`
	FullName      string          `json:"fullName"`
	Email         string          `json:"email"`
	WalletBalance json.Number     `json:"walletBalance"`
	Currency      ledger.Currency `json:"currency"`
	// InitialFundsStatus is "PENDING" on a 202: the initial credit was
	// accepted and is not applied yet.
	InitialFundsStatus string `json:"initialFundsStatus,omitempty"`
}

// customer is one item of the customer list.
type customer struct {
	ID        int64     `json:"id"`
	FullName  string    `json:"fullName"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"createdAt"`
}

// wallet is one item of a customer's wallet list.
type wallet struct {
	WalletID     string          `json:"walletId"`
	Currency     ledger.Currency `json:"currency"`
	Balance      json.Number     `json:"balance"`
	WalletType   string          `json:"walletType"`
	CampaignID   *string         `json:"campaignId,omitempty"`
	CampaignName *string         `json:"campaignName,omitempty"`
	Status       string          `json:"status"`
}

// initialFundsReference is the referenceId of a customer's initial credit:
// one per standard wallet (a consumer and a currency), so it applies once.
func initialFundsReference(consumerID string, cur ledger.Currency) string {
	return "initial-funds-" + consumerID + "-" + string(cur)
}

// walletsPerConsumerMax bounds the wallets read to find one by currency.
const walletsPerConsumerMax = 500

var initialFundsDescription = "Initial funds"

// createCustomer makes (or finds, by email) a consumer, opens its standard
// wallet in the currency, and credits initialFunds from the partner
// balance, waiting for the credit as a transaction does.
func (p *API) createCustomer(c *gin.Context) {
	var req struct {
		FullName     string          `json:"fullName"`
		Email        string          `json:"email"`
		Currency     string          `json:"currency"`
		InitialFunds json.RawMessage `json:"initialFunds"`
	}
	if !bind(c, &req) {
		return
	}
	var v validate.Validator
	v.Text("fullName", req.FullName, true, validate.NameLenMax)
	if req.Email == "" {
		v.Add("email", "is required")
	} else {
		v.Email("email", &req.Email)
	}
	cur := v.Currency("currency", req.Currency)
	var funds int64
	if cur != "" {
		funds = v.MajorAmount("initialFunds", req.InitialFunds, cur, false, true)
	}
	if !valid(c, &v) {
		return
	}
	ws := wsID(c)
	// Refuse what the partner balance cannot cover before anything is
	// made, so the usual refusal leaves nothing behind. (Should the balance
	// drop between this look and the credit, the credit fails and the 402
	// names the customer and wallet made, to fund once money is in.)
	if funds > 0 && !p.partnerCovers(c, ws, cur, funds) {
		return
	}
	consumer, err := p.ws.ConsumerForEmail(c, ws, req.Email, req.FullName)
	if err != nil {
		p.fail(c, err)
		return
	}
	// The wallet and its first credit are stored together: a fault between
	// the two cannot leave a wallet that a retry (then a 400) never funds.
	var (
		w   ledger.Wallet
		txn ledger.Transaction
	)
	if funds > 0 {
		w, txn, err = p.ledger.CreateFundedWallet(c, ws, consumer.ID, cur, ledger.TransactionRequest{WorkspaceID: ws,
			ReferenceID: initialFundsReference(consumer.ID, cur), Type: ledger.TypeCredit, Amount: funds, Currency: cur,
			Description: &initialFundsDescription})
	} else {
		w, err = p.ledger.CreateWallet(c, ws, consumer.ID, ledger.WalletStandard, cur, nil)
	}
	if errors.Is(err, ledger.ErrWalletExists) {
		p.walletExists(c, consumer, cur)
		return
	}
	if err != nil {
		p.fail(c, err)
		return
	}
	out := createdCustomer{ID: consumer.Number, WalletID: w.ID, FullName: deref(consumer.Name), Email: deref(consumer.Email),
		WalletBalance: major(cur, w.Balance), Currency: cur}
	if funds == 0 {
		ok(c, http.StatusOK, out)
		return
	}
	txn = p.awaitOutcome(c, txn, false)
	switch txn.Status {
	case ledger.StatusCompleted:
		balance, err := p.ledger.BalanceAfter(c, txn)
		if err != nil {
			p.fail(c, err)
			return
		}
		out.WalletBalance = major(cur, balance)
		ok(c, http.StatusOK, out)
	case ledger.StatusFailed:
		refuse(c, txn, consumer.Number)
	default:
		out.InitialFundsStatus = statusPending
		ok(c, http.StatusAccepted, out)
	}
}

// walletExists answers a create for an email and currency that already
// have a wallet: 400, as Orbt documents, naming the customer and wallet
// so the client can go on with them.
func (p *API) walletExists(c *gin.Context, consumer workspace.Consumer, cur ledger.Currency) {
	details := &errorDetails{Reason: "wallet_exists", CustomerID: consumer.Number,
		Fields: []httperr.FieldError{{Field: "email", Message: "already has a wallet in " + string(cur)}}}
	wallets, err := p.ledger.ConsumerWallets(c, wsID(c), consumer.ID, "", walletsPerConsumerMax)
	if err != nil {
		p.fail(c, err)
		return
	}
	for _, w := range wallets {
		if w.Type == ledger.WalletStandard && w.Currency == cur {
			details.WalletID = w.ID
		}
	}
	renderError(c, http.StatusBadRequest, codeValidation, "This email already has a "+string(cur)+" wallet.", details, 0)
}

// partnerCovers reports whether the partner balance in cur holds amount,
// answering the 402 itself when it does not.
func (p *API) partnerCovers(c *gin.Context, ws string, cur ledger.Currency, amount int64) bool {
	balances, err := p.ledger.PartnerBalances(c, ws)
	if err != nil {
		p.fail(c, err)
		return false
	}
	var available int64
	for _, b := range balances {
		if b.Currency == cur {
			available = b.Available
		}
	}
	if available >= amount {
		return true
	}
	renderError(c, http.StatusPaymentRequired, codeBusinessRule,
		"The partner balance ("+cur.FormatMajor(available)+" "+string(cur)+") cannot cover initialFunds; nothing was created.",
		&errorDetails{Reason: ledger.ReasonInsufficientPartnerFunds}, 0)
	return false
}

func (p *API) listCustomers(c *gin.Context) {
	pg, good := readPage(c)
	if !good {
		return
	}
	rows, err := p.ws.ConsumersByNumber(c, wsID(c), pg.offset(), pg.Size+1)
	if err != nil {
		p.fail(c, err)
		return
	}
	items := make([]customer, 0, len(rows))
	for _, r := range rows {
		items = append(items, customer{ID: r.Number, FullName: deref(r.Name), Email: deref(r.Email), CreatedAt: r.CreatedAt})
	}
	answerPage(c, pg, items)
}

func (p *API) listWallets(c *gin.Context) {
	number, err := strconv.ParseInt(c.Param("customerId"), 10, 64)
	if err != nil || number <= 0 {
		Render(c, httperr.New(http.StatusUnprocessableEntity, "validation_error", "The customer id must be a positive integer.",
			httperr.FieldError{Field: "customerId", Message: "must be a positive integer"}))
		return
	}
	pg, good := readPage(c)
	if !good {
		return
	}
	ws := wsID(c)
	consumer, err := p.ws.ConsumerByNumber(c, ws, number)
	if err != nil {
		p.fail(c, err)
		return
	}
	rows, err := p.ledger.ConsumerWalletsAt(c, ws, consumer.ID, pg.offset(), pg.Size+1)
	if err != nil {
		p.fail(c, err)
		return
	}
	var campaignIDs []string
	for _, w := range rows {
		if w.CampaignID != nil {
			campaignIDs = append(campaignIDs, *w.CampaignID)
		}
	}
	names, err := p.ledger.CampaignNames(c, ws, campaignIDs)
	if err != nil {
		p.fail(c, err)
		return
	}
	items := make([]wallet, 0, len(rows))
	for _, w := range rows {
		item := wallet{WalletID: w.ID, Currency: w.Currency, Balance: major(w.Currency, w.Balance),
			WalletType: "STANDARD", Status: "ENABLED"}
		if w.Type == ledger.WalletCampaign {
			item.WalletType, item.CampaignID = "CAMPAIGN", w.CampaignID
			if name, found := names[deref(w.CampaignID)]; found {
				item.CampaignName = &name
			}
		}
		if w.Status != "active" {
			item.Status = "DISABLED"
		}
		items = append(items, item)
	}
	answerPage(c, pg, items)
}

// Numbered pages as Orbt's API has them: ?page= (zero-based) and ?size=
// (default 20; more than 50 is served as 50, the size the answer reports).
const (
	pageSizeDefault = 20
	pageSizeMax     = 50
)

type page struct {
	Page int64 `json:"page"`
	Size int   `json:"size"`
}

func (pg page) offset() int64 { return pg.Page * int64(pg.Size) }

// readPage reads ?page= and ?size=, answering 422 naming the parameter
// when one is not a number in range.
func readPage(c *gin.Context) (page, bool) {
	pg := page{Size: pageSizeDefault}
	var v validate.Validator
	if s, set := c.GetQuery("page"); set {
		n, err := strconv.ParseInt(s, 10, 64)
		switch {
		case err != nil || n < 0:
			v.Add("page", "must be a whole number from 0")
		case n > math.MaxInt64/pageSizeMax:
			v.Add("page", "is past any list's end")
		default:
			pg.Page = n
		}
	}
	if s, set := c.GetQuery("size"); set {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			v.Add("size", "must be a whole number from 1")
		}
		pg.Size = min(n, pageSizeMax)
	}
	if e := v.Err(); e != nil {
		e.Status = http.StatusUnprocessableEntity
		Render(c, e)
		return page{}, false
	}
	return pg, true
}

// answerPage renders one page from up to Size+1 rows (the extra one tells
// that there is a next page).
func answerPage[T any](c *gin.Context, pg page, rows []T) {
	hasNext := len(rows) > pg.Size
	if hasNext {
		rows = rows[:pg.Size]
	}
	ok(c, http.StatusOK, struct {
		Content []T `json:"content"`
		page
		HasNext bool `json:"hasNext"`
	}{Content: rows, page: pg, HasNext: hasNext})
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
