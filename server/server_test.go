package server_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/server"
)

// A client that trickles its body a byte at a time is cut off once the read
// timeout passes, instead of holding a connection (and a handler) for as
// long as it likes: here an 86-byte body at a byte per 100 ms would take
// 8.6 s, and the server hangs up after its 300 ms read timeout, though the
// route may take seconds to answer (it waits for outcomes).
func TestSlowClientsAreCutOff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := server.New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.Engine.POST("/v1/transactions", gin.WrapF(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, "body not read in time", http.StatusRequestTimeout)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.RouteTimeout(http.MethodPost, "/v1/transactions", 20*time.Second)
	go server.Serve(ctx, ln, srv.Handler(), server.Timeouts{ReadHeader: 300 * time.Millisecond, Read: 300 * time.Millisecond,
		Write: time.Second, Idle: time.Second})

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"referenceId":"slow","type":"credit","walletId":"wal_x","amount":1,"currency":"USD"}`
	if _, err := io.WriteString(conn, "POST /v1/transactions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 86\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	sent := 0
	for ; sent < len(body); sent++ {
		if _, err := conn.Write([]byte{body[sent]}); err != nil {
			break // the server hung up
		}
		time.Sleep(100 * time.Millisecond)
		if sent == 20 {
			break // long past the read timeout: see what the server did
		}
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		defer res.Body.Close()
		if res.StatusCode == http.StatusNoContent {
			t.Fatalf("the server waited out a trickled body (%d of %d bytes sent)", sent, len(body))
		}
		return // it answered an error and closes
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server still holds the connection after %d trickled bytes", sent)
	}
	if !strings.Contains(err.Error(), "EOF") && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("reading the answer: %v", err)
	}
}
