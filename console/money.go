package console

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/batchreq"
	"github.com/orbt/orbt/httperr"
	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/validate"
	"github.com/orbt/orbt/workspace"
)

func (u *Console) campaigns(c *gin.Context) { u.renderCampaigns(c, http.StatusOK, view{}) }

func (u *Console) renderCampaigns(c *gin.Context, status int, v view) {
	list, err := u.opts.Ledger.Campaigns(c, sessionOf(c).WorkspaceID, "", 500)
	if err != nil {
		u.fail(c, err)
		return
	}
	v["Campaigns"] = list
	u.render(c, status, "campaigns", v)
}

// createCampaign creates a campaign as POST /v1/campaigns does, its budget
// in major units.
func (u *Console) createCampaign(c *gin.Context) {
	form := map[string]string{"name": strings.TrimSpace(c.PostForm("name")), "currency": strings.ToUpper(strings.TrimSpace(c.PostForm("currency"))),
		"budget": strings.TrimSpace(c.PostForm("budget"))}
	var v validate.Validator
	v.Text("name", form["name"], true, validate.NameLenMax)
	cur := v.Currency("currency", form["currency"])
	name := form["name"]
	f := ledger.CampaignFields{Name: &name}
	if form["budget"] != "" {
		budget := v.MajorAmountText("budget", form["budget"], cur, false)
		f.Budget = &budget
	}
	if v.Err() != nil {
		u.renderCampaigns(c, http.StatusUnprocessableEntity, view{"Form": form, "Errors": fieldErrors(&v)})
		return
	}
	cmp, err := u.opts.Ledger.CreateCampaign(c, sessionOf(c).WorkspaceID, cur, f)
	if err != nil {
		errs, status, ok := formError(err, "name")
		if !ok {
			u.fail(c, err)
			return
		}
		u.renderCampaigns(c, status, view{"Form": form, "Errors": errs})
		return
	}
	u.record(c, "campaign.created", cmp.ID, cmp.Name)
	c.Redirect(http.StatusSeeOther, "/console/campaigns")
}

// setCampaignStatus pauses or resumes a campaign.
func (u *Console) setCampaignStatus(c *gin.Context) {
	status := c.PostForm("status")
	if status != ledger.CampaignActive && status != ledger.CampaignPaused {
		u.message(c, http.StatusBadRequest, "Refused", "A campaign can be paused or made active.")
		return
	}
	cmp, err := u.opts.Ledger.UpdateCampaign(c, sessionOf(c).WorkspaceID, c.Param("id"), ledger.CampaignFields{Status: &status})
	if err != nil {
		u.fail(c, err)
		return
	}
	u.record(c, "campaign."+status, cmp.ID, cmp.Name)
	c.Redirect(http.StatusSeeOther, "/console/campaigns")
}

func (u *Console) payouts(c *gin.Context) { u.renderPayouts(c, http.StatusOK, view{}) }

func (u *Console) renderPayouts(c *gin.Context, status int, v view) {
	list, err := u.opts.Ledger.Batches(c, sessionOf(c).WorkspaceID, "", listSize)
	if err != nil {
		u.fail(c, err)
		return
	}
	v["Batches"], v["Columns"] = list, strings.Join(batchreq.Columns, ",")
	if _, ok := v["ReferenceID"]; !ok {
		v["ReferenceID"] = newReference()
	}
	u.render(c, status, "payouts", v)
}

// payoutRows reads a payout file (amounts in major units) and checks every
// row; rowErrors lists what is wrong with which line.
func (u *Console) payoutRows(file io.Reader) ([]ledger.BatchItem, []httperr.FieldError, error) {
	items, lines, p := batchreq.ReadCSV(file, u.opts.BatchItemsMax, batchreq.MajorUnits)
	if p == nil {
		var out []ledger.BatchItem
		var v validate.Validator
		if out, p = batchreq.Validate(&v, items, lines, u.opts.BatchItemsMax); p == nil {
			return out, nil, nil
		}
	}
	if p.Status >= 500 || p.Status == http.StatusRequestEntityTooLarge {
		return nil, nil, p
	}
	if len(p.Fields) == 0 {
		return nil, []httperr.FieldError{{Field: "file", Message: p.Detail}}, nil
	}
	// A person reads a row by its line and column: "amount", not "items[1].amount".
	for i, f := range p.Fields {
		if _, column, ok := strings.Cut(f.Field, "]."); ok {
			p.Fields[i].Field = column
		}
	}
	return nil, p.Fields, nil
}

// reviewPayout reads an uploaded payout file and shows every row's error,
// or, when all rows are good, what will be paid, for the member to submit.
func (u *Console) reviewPayout(c *gin.Context) {
	ref := c.PostForm("referenceId")
	if !u.formReference(c, ref) {
		return
	}
	fh, err := c.FormFile("file")
	if err != nil {
		u.renderPayouts(c, http.StatusUnprocessableEntity, view{"ReferenceID": ref, "Errors": map[string]string{"file": "Choose a CSV file."}})
		return
	}
	f, err := fh.Open()
	if err != nil {
		u.fail(c, err)
		return
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, batchreq.BodyBytesMax+1))
	if err != nil {
		u.fail(c, err)
		return
	}
	if len(raw) > batchreq.BodyBytesMax {
		u.renderPayouts(c, http.StatusRequestEntityTooLarge, view{"ReferenceID": ref, "Errors": map[string]string{"file": "The file is larger than 8 MiB."}})
		return
	}
	items, rowErrors, err := u.payoutRows(bytes.NewReader(raw))
	if err != nil {
		u.fail(c, err)
		return
	}
	if rowErrors != nil {
		u.renderPayouts(c, http.StatusUnprocessableEntity, view{"ReferenceID": ref, "FileName": fh.Filename, "RowErrors": rowErrors})
		return
	}
	u.render(c, http.StatusOK, "payout_review", view{"ReferenceID": ref, "FileName": fh.Filename, "Items": items,
		"Totals": totals(items), "CSV": string(raw), "Section": "payouts"})
}

// total is what a payout moves in one currency.
type total struct {
	Currency        ledger.Currency
	Credits, Debits int64
	Count           int
}

func totals(items []ledger.BatchItem) []total {
	var out []total
	for _, it := range items {
		i := 0
		for i < len(out) && out[i].Currency != it.Currency {
			i++
		}
		if i == len(out) {
			out = append(out, total{Currency: it.Currency})
		}
		out[i].Count++
		if it.Type == ledger.TypeDebit {
			out[i].Debits += it.Amount
		} else {
			out[i].Credits += it.Amount
		}
	}
	return out
}

// submitPayout submits the reviewed file as one batch, under the
// referenceId its upload form carried: submitting twice pays once.
func (u *Console) submitPayout(c *gin.Context) {
	ref := c.PostForm("referenceId")
	if !u.formReference(c, ref) {
		return
	}
	items, rowErrors, err := u.payoutRows(strings.NewReader(c.PostForm("csv")))
	if err != nil {
		u.fail(c, err)
		return
	}
	if rowErrors != nil {
		u.renderPayouts(c, http.StatusUnprocessableEntity, view{"ReferenceID": newReference(), "RowErrors": rowErrors})
		return
	}
	ws := sessionOf(c).WorkspaceID
	sub, err := u.opts.Ledger.SubmitBatch(c, ledger.BatchRequest{WorkspaceID: ws, ReferenceID: ref, Items: items}, workspace.EnsureConsumers)
	if err != nil {
		var conflict *ledger.ConflictError
		if errors.As(err, &conflict) {
			u.renderPayouts(c, http.StatusConflict, view{"Errors": map[string]string{"file": "This payout was already submitted with other rows. Upload the file again to submit it as a new payout."}})
			return
		}
		u.fail(c, err)
		return
	}
	u.opts.Enqueuer.BatchLanes(c, sub.Batch.ID, sub.Lanes)
	u.opts.Enqueuer.Deliveries(c, sub.Deliveries)
	if !sub.Replayed {
		u.record(c, "payout.submitted", sub.Batch.ID, strconv.Itoa(len(items))+" rows")
	}
	c.Redirect(http.StatusSeeOther, "/console/payouts/"+sub.Batch.ID)
}

// failedRowsMax bounds the failed rows a payout's page lists (the CSV has
// them all).
const failedRowsMax = 100

// payout shows a batch's progress, refreshing itself until it completes,
// and its failed rows.
func (u *Console) payout(c *gin.Context) {
	ws := sessionOf(c).WorkspaceID
	b, err := u.opts.Ledger.Batch(c, ws, c.Param("id"))
	if err != nil {
		u.fail(c, err)
		return
	}
	failed, err := u.opts.Ledger.Transactions(c, ws, ledger.TransactionFilter{BatchID: b.ID, Status: ledger.StatusFailed}, "", failedRowsMax)
	if err != nil {
		u.fail(c, err)
		return
	}
	done := b.Counts.Total - b.Counts.Pending
	u.render(c, http.StatusOK, "payout", view{"Batch": b, "Failed": failed, "Done": done,
		"Percent": int64(done) * 100 / max(int64(b.Counts.Total), 1), "Section": "payouts"})
}

// payoutFailedCSV downloads every failed row of a batch with its reason,
// in the payout file's own columns so it can be fixed and uploaded again.
func (u *Console) payoutFailedCSV(c *gin.Context) {
	ws := sessionOf(c).WorkspaceID
	b, err := u.opts.Ledger.Batch(c, ws, c.Param("id"))
	if err != nil {
		u.fail(c, err)
		return
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write([]string{"referenceId", "walletId", "type", "amount", "currency", "description", "failureReason"})
	after := ""
	for {
		page, err := u.opts.Ledger.Transactions(c, ws, ledger.TransactionFilter{BatchID: b.ID, Status: ledger.StatusFailed}, after, 500)
		if err != nil {
			u.fail(c, err)
			return
		}
		for _, t := range page {
			w.Write([]string{t.ReferenceID, deref(t.WalletID), t.Type, t.Currency.FormatMajor(t.Amount), string(t.Currency),
				deref(t.Description), deref(t.FailureReason)})
		}
		if len(page) < 500 {
			break
		}
		after = page[len(page)-1].ID
	}
	w.Flush()
	c.Header("Content-Disposition", `attachment; filename="`+b.ID+`-failed.csv"`)
	c.Data(http.StatusOK, "text/csv; charset=utf-8", buf.Bytes())
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// transactions lists transactions, filtered by status, wallet or batch.
func (u *Console) transactions(c *gin.Context) {
	var v validate.Validator
	f := ledger.TransactionFilter{WalletID: v.QueryToken(c.Request, "walletId"), BatchID: v.QueryToken(c.Request, "batchId"),
		Status: c.Query("status")}
	if f.Status != "" {
		v.OneOf("status", f.Status, ledger.StatusPending, ledger.StatusCompleted, ledger.StatusFailed)
	}
	after := c.Query("after")
	if after != "" && !validate.PathID(after) {
		v.Add("after", "is not a page of this list")
	}
	filter := map[string]string{"walletId": f.WalletID, "batchId": f.BatchID, "status": f.Status}
	if v.Err() != nil {
		u.render(c, http.StatusUnprocessableEntity, "transactions", view{"Filter": filter, "Errors": fieldErrors(&v)})
		return
	}
	list, err := u.opts.Ledger.Transactions(c, sessionOf(c).WorkspaceID, f, after, listSize)
	if err != nil {
		u.fail(c, err)
		return
	}
	v2 := view{"Filter": filter, "Transactions": list}
	if len(list) == listSize {
		next := c.Request.URL.Query()
		next.Set("after", list[len(list)-1].ID)
		v2["Next"] = "/console/transactions?" + next.Encode()
	}
	u.render(c, http.StatusOK, "transactions", v2)
}

// transaction shows one transaction and its ledger entries.
func (u *Console) transaction(c *gin.Context) {
	ws := sessionOf(c).WorkspaceID
	t, err := u.opts.Ledger.Transaction(c, ws, c.Param("id"))
	if err != nil {
		u.fail(c, err)
		return
	}
	entries, err := u.opts.Ledger.Entries(c, ws, t.ID)
	if err != nil {
		u.fail(c, err)
		return
	}
	u.render(c, http.StatusOK, "transaction", view{"T": t, "Entries": entries, "Section": "transactions"})
}
