package console_test

import (
	"context"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"testing"

	"github.com/orbt/orbt/app"
	"github.com/orbt/orbt/console"
	"github.com/orbt/orbt/teststack"
)

// smtpServer is a minimal SMTP server on loopback that takes one message
// (no STARTTLS, as a local relay) and hands over its recipient and data.
func smtpServer(t *testing.T) (addr string, got chan [2]string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got = make(chan [2]string, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		tp := textproto.NewConn(conn)
		tp.PrintfLine("220 test ESMTP")
		var rcpt string
		for {
			line, err := tp.ReadLine()
			if err != nil {
				return
			}
			verb := strings.ToUpper(strings.Fields(line + " x")[0])
			switch verb {
			case "EHLO", "HELO":
				tp.PrintfLine("250 test")
			case "MAIL":
				tp.PrintfLine("250 ok")
			case "RCPT":
				rcpt = strings.Trim(strings.TrimPrefix(line, "RCPT TO:"), "<>")
				tp.PrintfLine("250 ok")
			case "DATA":
				tp.PrintfLine("354 go on")
				data, _ := tp.ReadDotBytes()
				tp.PrintfLine("250 queued")
				got <- [2]string{rcpt, string(data)}
			case "QUIT":
				tp.PrintfLine("221 bye")
				return
			default:
				tp.PrintfLine("502 no")
			}
		}
	}()
	return ln.Addr().String(), got
}

func TestSMTPMailerSendsTheLink(t *testing.T) {
	addr, got := smtpServer(t)
	m, err := console.NewSMTPMailer("smtp://" + addr + "?from=orbt@shop.example")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), "fin@shop.example", "You are invited", "Accept:\nhttps://orbt.example/console/invite/abc\n"); err != nil {
		t.Fatal(err)
	}
	msg := <-got
	if msg[0] != "fin@shop.example" || !strings.Contains(msg[1], "Subject: You are invited") ||
		!strings.Contains(msg[1], "https://orbt.example/console/invite/abc") {
		t.Fatalf("mailed %q: %q", msg[0], msg[1])
	}
	for _, bad := range []string{"http://host?from=a@b.example", "smtp://host", "smtp://host?from=not-an-address", "smtp://?from=a@b.example"} {
		if _, err := console.NewSMTPMailer(bad); err == nil {
			t.Errorf("ORBT_SMTP_URL %q accepted", bad)
		}
	}
}

// With ORBT_SMTP_URL set, an invitation is mailed to the address invited,
// and still shown once to the admin.
func TestInvitationIsMailed(t *testing.T) {
	addr, got := smtpServer(t)
	s := stackFor(t, teststack.Options{NoWorker: true, Settings: app.Settings{SMTPURL: "smtp://" + addr + "?from=orbt@shop.example"}})
	p := newPartner(t, s, 0)
	admin := join(t, s.URL, p.inviteURL, mail(t, "admin"))
	status, _, page := admin.post("/console/team/invites", url.Values{"email": {mail(t, "fin")}, "role": {"finance"}})
	if status != http.StatusCreated || !strings.Contains(page, "sent by email") {
		t.Fatalf("invite: %d\n%s", status, page)
	}
	link := shown(t, page)
	msg := <-got
	if msg[0] != mail(t, "fin") || !strings.Contains(msg[1], link) {
		t.Fatalf("mailed to %q: %q, want the link %s", msg[0], msg[1], link)
	}
}
