package sweep

import (
	"bytes"
	"context"
	"encoding/hex"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// secretPrefixes are the visible prefixes of Orbt's secrets: what follows
// one is searched for too (the secret without its label).
var secretPrefixes = []string{"orbt_sk_", "whsec_", "ssec_"}

// secretLenMin is the shortest value searched for: a shorter one (a
// gift card's PIN) would be found by chance.
const secretLenMin = 12

// copyHeader starts the data of a table in a pg_dump.
var copyHeader = regexp.MustCompile(`(?m)^COPY ([^ ]+) `)

// secretsAtRest makes the secrets the console shows once and a card bought
// on a consumer page, then searches every secret the sweep has seen in the
// logs and in a pg_dump --data-only of the database: none may be there in
// clear text (nor in hex, as a bytea column would show it).
func (s *sweep) secretsAtRest() {
	s.consoleSecrets(s.a)
	s.consumerCard(s.b)

	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(c, "pg_dump", "--data-only", "--no-owner", "--no-privileges", "--dbname", s.target.DatabaseURL)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	dump, err := cmd.Output()
	if err != nil {
		s.t.Fatalf("sweep: pg_dump --data-only (install postgresql-client): %v: %s", err, stderr.String())
	}
	logs := s.target.Logs()
	if len(logs) == 0 {
		s.t.Error("sweep: the Orbt under sweep has logged nothing: its logs cannot be checked")
	}
	seen := map[string]bool{}
	kinds := counter{}
	for _, sc := range s.secrets {
		if seen[sc.value] || len(sc.value) < secretLenMin {
			continue
		}
		seen[sc.value] = true
		kinds[sc.kind]++
		forms := []string{sc.value}
		for _, p := range secretPrefixes {
			if rest, ok := strings.CutPrefix(sc.value, p); ok && len(rest) >= secretLenMin {
				forms = append(forms, rest)
			}
		}
		if esc := url.QueryEscape(sc.value); esc != sc.value {
			forms = append(forms, esc)
		}
		forms = append(forms, hex.EncodeToString([]byte(sc.value)))
		for _, f := range forms {
			if i := bytes.Index(dump, []byte(f)); i >= 0 {
				s.t.Errorf("a %s (%s…) is in clear text in the database, in %s", sc.kind, sc.value[:6], tableAt(dump, i))
				break
			}
		}
		for _, f := range forms {
			if i := bytes.Index(logs, []byte(f)); i >= 0 {
				s.t.Errorf("a %s (%s…) is in a log line: %s", sc.kind, sc.value[:6], lineAt(logs, i, f))
				break
			}
		}
	}
	s.t.Logf("secrets searched for in %d bytes of pg_dump and %d bytes of logs: %s", len(dump), len(logs), kinds)
}

// tableAt names the table of a pg_dump whose data holds offset i.
func tableAt(dump []byte, i int) string {
	table := "the dump's preamble"
	for _, m := range copyHeader.FindAllSubmatchIndex(dump[:i], -1) {
		table = string(dump[m[2]:m[3]])
	}
	return table
}

// lineAt is the log line holding offset i, the secret masked.
func lineAt(logs []byte, i int, secret string) string {
	start := bytes.LastIndexByte(logs[:i], '\n') + 1
	end := bytes.IndexByte(logs[i:], '\n')
	if end < 0 {
		end = len(logs) - i
	}
	line := strings.ReplaceAll(string(logs[start:i+end]), secret, "<secret>")
	if len(line) > 600 {
		line = line[:600] + "…"
	}
	return line
}

// consoleSecrets has the admin make what the console shows once: an API
// key, a webhook endpoint's secret, a signing secret, a consumer link and
// a password reset link.
func (s *sweep) consoleSecrets(w *tenant) {
	s.t.Helper()
	for _, f := range []struct {
		what, path string
		form       url.Values
		want       int
	}{
		{"API key", "/console/keys", url.Values{"name": {"sweep console key"}, "scope": {"read"}}, http.StatusCreated},
		{"webhook secret", "/console/webhooks", url.Values{"url": {"https://orbt-sweep.invalid/console"}, "events": {"redemption.failed"}}, http.StatusCreated},
		{"signing secret", "/console/settings/signing-secret", url.Values{}, http.StatusCreated},
		{"consumer link token", "/console/consumers/" + w.other.id + "/links", url.Values{"days": {"1"}}, http.StatusCreated},
		{"console reset token", "/console/team/members/" + w.finance.id + "/reset", url.Values{}, http.StatusCreated},
	} {
		page := w.admin.post(f.path, f.form)
		m := shownOnce.FindSubmatch(page.body)
		if page.status != f.want || m == nil {
			s.t.Errorf("sweep: the console shows no %s once (POST %s): %s", f.what, f.path, page)
			continue
		}
		value := string(m[1])
		if strings.HasPrefix(value, "http") {
			value = tokenOf(value)
		}
		s.keep(f.what, value)
	}
}

// consumerCard buys a gift card on the consumer's page and keeps its code.
func (s *sweep) consumerCard(w *tenant) {
	s.t.Helper()
	c := &w.consumer
	home := c.session.do(get("/c/")(w), nil)
	ref := regexp.MustCompile(`name="referenceId" value="([^"]+)"`).FindSubmatch(home.body)
	if home.status != http.StatusOK || ref == nil {
		s.t.Fatalf("sweep: no redeem form on the consumer page: %s", home)
	}
	ans := s.asConsumer(c, formRequest("POST", "/c/redeem", url.Values{"walletId": {w.wallet}, "referenceId": {string(ref[1])},
		"brandId": {brand}, "amount": {"5.00"}}))
	if ans.status != http.StatusSeeOther {
		s.t.Fatalf("sweep: redeem on the consumer page: %s", ans)
	}
	where := ans.header.Get("Location")
	var code []byte
	s.waitFor("the card on the consumer page", func() bool {
		page := c.session.do(get(where)(w), nil)
		if m := cardCode.FindSubmatch(page.body); m != nil {
			code = m[1]
			return true
		}
		return false
	})
	s.keep("gift card code", string(code))
}
