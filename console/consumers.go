package console

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/httperr"
	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/store"
	"github.com/orbt/orbt/validate"
	"github.com/orbt/orbt/workspace"
)

// listSize is how many rows a console list shows a page.
const listSize = 50

// overview: the partner's balances, recent transactions and campaign budgets.
func (u *Console) overview(c *gin.Context) {
	ws := sessionOf(c).WorkspaceID
	balances, err := u.opts.Ledger.PartnerBalances(c, ws)
	if err != nil {
		u.fail(c, err)
		return
	}
	recent, err := u.opts.Ledger.Transactions(c, ws, ledger.TransactionFilter{}, "", 10)
	if err != nil {
		u.fail(c, err)
		return
	}
	campaigns, err := u.opts.Ledger.Campaigns(c, ws, "", listSize)
	if err != nil {
		u.fail(c, err)
		return
	}
	u.render(c, http.StatusOK, "overview", view{"Balances": balances, "Recent": recent, "Campaigns": campaigns})
}

// formError turns a store's refusal into the message shown on the form:
// beside the field it names, or above the form. ok is false for what is
// not the member's doing (a fault), which the caller answers with fail.
func formError(err error, field string) (errs map[string]string, status int, ok bool) {
	e := httperr.Classify(err)
	if e.Status >= 500 {
		return nil, 0, false
	}
	errs = map[string]string{}
	for _, fe := range e.Fields {
		errs[fe.Field] = fe.Message
	}
	if len(errs) == 0 {
		errs[field] = e.Detail
	}
	return errs, e.Status, true
}

func (u *Console) consumers(c *gin.Context) {
	u.renderConsumers(c, http.StatusOK, view{})
}

func (u *Console) renderConsumers(c *gin.Context, status int, v view) {
	ws := sessionOf(c).WorkspaceID
	q := strings.TrimSpace(c.Query("q"))
	var (
		list []workspace.Consumer
		err  error
	)
	cursor := c.Query("after")
	switch {
	case q != "" && (len(q) > validate.ReferenceIDLenMax || !validate.Printable(q)):
		v["Errors"] = map[string]string{"q": "Search for an externalId or an email address."}
	case q != "":
		list, err = u.opts.Workspaces.SearchConsumers(c, ws, q, listSize)
	case cursor != "" && !validate.PathID(cursor):
		u.notFound(c, nil)
		return
	default:
		list, err = u.opts.Workspaces.Consumers(c, ws, "", cursor, listSize)
	}
	if err != nil {
		u.fail(c, err)
		return
	}
	v["Q"], v["Consumers"] = q, list
	if q == "" && len(list) == listSize {
		v["Next"] = list[len(list)-1].ID
	}
	u.render(c, status, "consumers", v)
}

// createConsumer registers a consumer by hand, as POST /v1/consumers does.
func (u *Console) createConsumer(c *gin.Context) {
	externalID, email, name := strings.TrimSpace(c.PostForm("externalId")), strings.TrimSpace(c.PostForm("email")), strings.TrimSpace(c.PostForm("name"))
	var v validate.Validator
	v.Token("externalId", externalID, validate.ReferenceIDLenMax)
	cons := workspace.Consumer{ExternalID: externalID}
	if email != "" {
		cons.Email = &email
		v.Email("email", cons.Email)
	}
	if name != "" {
		cons.Name = &name
		v.OptText("name", cons.Name, validate.NameLenMax)
	}
	form := map[string]string{"externalId": externalID, "email": email, "name": name}
	if v.Err() != nil {
		u.renderConsumers(c, http.StatusUnprocessableEntity, view{"Form": form, "Errors": fieldErrors(&v)})
		return
	}
	created, err := u.opts.Workspaces.CreateConsumer(c, sessionOf(c).WorkspaceID, cons)
	if errors.Is(err, workspace.ErrConsumerExists) {
		u.renderConsumers(c, http.StatusConflict, view{"Form": form, "Errors": map[string]string{"externalId": "A consumer with this externalId exists."}})
		return
	}
	if err != nil {
		u.fail(c, err)
		return
	}
	u.record(c, "consumer.created", created.ID, created.ExternalID)
	c.Redirect(http.StatusSeeOther, "/console/consumers/"+created.ID)
}

// consumer shows one consumer: wallets with balances, the forms that act
// on them, and their gift cards.
func (u *Console) consumer(c *gin.Context) {
	v := view{}
	if id := c.Query("txn"); id != "" && validate.PathID(id) {
		// The outcome of the credit or debit just made (see moveMoney).
		if txn, err := u.opts.Ledger.Transaction(c, sessionOf(c).WorkspaceID, id); err == nil {
			v["Moved"] = txn
		}
	}
	u.renderConsumer(c, http.StatusOK, v)
}

// walletView is a wallet with the name a person knows it by.
type walletView struct {
	ledger.Wallet
	Name string
}

func (u *Console) renderConsumer(c *gin.Context, status int, v view) {
	ws := sessionOf(c).WorkspaceID
	cons, err := u.opts.Workspaces.Consumer(c, ws, c.Param("id"))
	if err != nil {
		u.fail(c, err)
		return
	}
	wallets, err := u.opts.Ledger.ConsumerWallets(c, ws, cons.ID, "", 100)
	if err != nil {
		u.fail(c, err)
		return
	}
	campaigns, err := u.opts.Ledger.Campaigns(c, ws, "", 100)
	if err != nil {
		u.fail(c, err)
		return
	}
	names := make(map[string]string, len(campaigns))
	for _, cmp := range campaigns {
		names[cmp.ID] = cmp.Name
	}
	views := make([]walletView, len(wallets))
	ids := make([]string, len(wallets))
	for i, w := range wallets {
		views[i] = walletView{Wallet: w, Name: string(w.Currency) + " wallet"}
		if w.CampaignID != nil {
			views[i].Name = names[*w.CampaignID] + " (" + string(w.Currency) + ")"
		}
		ids[i] = w.ID
	}
	redemptions, err := u.opts.GiftCards.ConsumerRedemptions(c, ws, ids, listSize)
	if err != nil {
		u.fail(c, err)
		return
	}
	if moved, ok := v["Moved"].(ledger.Transaction); ok && (moved.WalletID == nil || !slices.Contains(ids, *moved.WalletID)) {
		delete(v, "Moved") // ?txn= names another consumer's transaction
	}
	if _, ok := v["Move"]; !ok {
		v["Move"] = map[string]string{"referenceId": newReference(), "type": ledger.TypeCredit}
	}
	v["Consumer"], v["Wallets"], v["Campaigns"], v["Redemptions"], v["Section"] = cons, views, campaigns, redemptions, "consumers"
	u.render(c, status, "consumer", v)
}

// referencePrefix starts every referenceId the console makes.
const referencePrefix = "console-"

// newReference is the referenceId a console form carries: sending the
// same form twice moves money once.
func newReference() string { return referencePrefix + store.Token(12) }

// formReference checks that a form's referenceId is one the console made,
// or answers 400: a form that is not ours moves nothing.
func (u *Console) formReference(c *gin.Context, ref string) bool {
	if !strings.HasPrefix(ref, referencePrefix) || !validate.PathID(ref) {
		u.message(c, http.StatusBadRequest, "Refused", "This form is not one of the console's. Go back, reload the page and try again.")
		return false
	}
	return true
}

// createWallet opens a wallet for the consumer: a standard one in a
// currency, or one of a campaign (in the campaign's currency).
func (u *Console) createWallet(c *gin.Context) {
	ws := sessionOf(c).WorkspaceID
	currency, campaignID := strings.ToUpper(strings.TrimSpace(c.PostForm("currency"))), c.PostForm("campaignId")
	var v validate.Validator
	walletType, campaign := ledger.WalletStandard, (*string)(nil)
	if campaignID != "" {
		v.Token("campaignId", campaignID, validate.IDLenMax)
		walletType, campaign = ledger.WalletCampaign, &campaignID
		if v.Err() == nil {
			cmp, err := u.opts.Ledger.Campaign(c, ws, campaignID)
			if err != nil {
				v.Add("campaignId", "Choose one of the campaigns listed.")
			} else {
				currency = string(cmp.Currency)
			}
		}
	}
	cur := v.Currency("currency", currency)
	form := map[string]string{"currency": currency, "campaignId": campaignID}
	if v.Err() != nil {
		u.renderConsumer(c, http.StatusUnprocessableEntity, view{"WalletForm": form, "WalletErrors": fieldErrors(&v)})
		return
	}
	if _, err := u.opts.Workspaces.Consumer(c, ws, c.Param("id")); err != nil {
		u.fail(c, err)
		return
	}
	w, err := u.opts.Ledger.CreateWallet(c, ws, c.Param("id"), walletType, cur, campaign)
	if err != nil {
		errs, status, ok := formError(err, "currency")
		if !ok {
			u.fail(c, err)
			return
		}
		if errors.Is(err, ledger.ErrWalletExists) {
			errs = map[string]string{"currency": "This consumer already has this wallet."}
		}
		u.renderConsumer(c, status, view{"WalletForm": form, "WalletErrors": errs})
		return
	}
	u.record(c, "wallet.created", w.ID, c.Param("id")+" "+string(w.Currency)+" "+w.Type)
	c.Redirect(http.StatusSeeOther, "/console/consumers/"+c.Param("id"))
}

// moveWait is how long a credit or debit made in the console is waited
// for before its page shows it still pending.
const moveWait = 3 * time.Second

// moveMoney credits or debits one of the consumer's wallets through the
// same path as POST /v1/transactions, under the form's referenceId.
func (u *Console) moveMoney(c *gin.Context) {
	ws := sessionOf(c).WorkspaceID
	form := map[string]string{"walletId": c.PostForm("walletId"), "type": c.PostForm("type"),
		"amount": strings.TrimSpace(c.PostForm("amount")), "description": strings.TrimSpace(c.PostForm("description")),
		"referenceId": c.PostForm("referenceId")}
	var v validate.Validator
	v.OneOf("type", form["type"], ledger.TypeCredit, ledger.TypeDebit)
	if !u.formReference(c, form["referenceId"]) {
		return
	}
	var wallet ledger.Wallet
	if !validate.PathID(form["walletId"]) {
		v.Add("walletId", "Choose one of the consumer's wallets.")
	} else if w, err := u.opts.Ledger.Wallet(c, ws, form["walletId"]); err != nil || w.ConsumerID != c.Param("id") {
		v.Add("walletId", "Choose one of the consumer's wallets.")
	} else {
		wallet = w
	}
	amount := v.MajorAmountText("amount", form["amount"], wallet.Currency, false)
	var description *string
	if form["description"] != "" {
		d := form["description"]
		description = &d
		v.OptText("description", description, validate.DescriptionLenMax)
	}
	if v.Err() != nil {
		u.renderConsumer(c, http.StatusUnprocessableEntity, view{"Move": form, "MoveErrors": fieldErrors(&v)})
		return
	}
	txn, replay, err := u.opts.Ledger.Submit(c, ledger.TransactionRequest{WorkspaceID: ws, ReferenceID: form["referenceId"],
		Type: form["type"], WalletID: wallet.ID, Amount: amount, Currency: wallet.Currency, Description: description})
	if err != nil {
		var conflict *ledger.ConflictError
		if errors.As(err, &conflict) {
			form["referenceId"] = newReference()
			u.renderConsumer(c, http.StatusConflict, view{"Move": form, "MoveErrors": map[string]string{
				"form": "You changed this form after sending it. Check it and send it again."}})
			return
		}
		errs, status, ok := formError(err, "form")
		if !ok {
			u.fail(c, err)
			return
		}
		u.renderConsumer(c, status, view{"Move": form, "MoveErrors": errs})
		return
	}
	if !replay {
		if txn.Status == ledger.StatusPending {
			u.opts.Enqueuer.TransactionAccepted(c, txn.ID, txn.LaneID())
		}
		u.record(c, "transaction."+txn.Type, txn.ID, form["referenceId"]+" "+money(txn.Currency, txn.Amount)+" to "+wallet.ID)
	}
	if txn.Status == ledger.StatusPending {
		if final, err := u.opts.Ledger.AwaitFinal(c, ws, txn, moveWait); err == nil {
			txn = final
		}
	}
	c.Redirect(http.StatusSeeOther, "/console/consumers/"+c.Param("id")+"?txn="+txn.ID)
}

func money(cur ledger.Currency, minor int64) string {
	return cur.FormatMajor(minor) + " " + string(cur)
}

// createLink issues a consumer link and shows it this once.
func (u *Console) createLink(c *gin.Context) {
	ws := sessionOf(c).WorkspaceID
	days, err := strconv.Atoi(c.PostForm("days"))
	maxDays := int(workspace.LinkTTLMax / (24 * time.Hour))
	if err != nil || days < 1 || days > maxDays {
		u.renderConsumer(c, http.StatusUnprocessableEntity, view{"LinkErrors": map[string]string{
			"days": "Choose from 1 to " + strconv.Itoa(maxDays) + " days."}})
		return
	}
	link, token, err := u.opts.Workspaces.CreateLink(c, ws, c.Param("id"), time.Duration(days)*24*time.Hour)
	if err != nil {
		u.fail(c, err)
		return
	}
	u.record(c, "consumer_link.created", link.ID, c.Param("id"))
	u.renderConsumer(c, http.StatusCreated, view{"Link": u.opts.PublicURL + "/c/l/" + token, "LinkExpires": link.ExpiresAt})
}
