package partnerapi_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"time"
)

// sign adds Orbt's signing headers to a request whose body is body (nil
// for none). The README shows this function as the Go signing example.
func sign(req *http.Request, body []byte, apiKey, clientID, secret string, now time.Time) {
	timestamp := now.UTC().Format(time.RFC3339)
	sum := sha256.Sum256(body)
	bodyHash := base64.StdEncoding.EncodeToString(sum[:])
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "%s\n%s\n%s\n%s", req.Method, timestamp, clientID, bodyHash)
	req.Header.Set("x-api-key", apiKey)
	req.Header.Set("x-client-id", clientID)
	req.Header.Set("x-timestamp", timestamp)
	req.Header.Set("x-body-hash", bodyHash)
	req.Header.Set("x-signature", base64.StdEncoding.EncodeToString(mac.Sum(nil)))
}

func Example_signing() {
	body := []byte(`{"amount":10.25,"transactionType":"CREDIT","referenceId":"order-1001"}`)
	req, _ := http.NewRequest("POST", "http://127.0.0.1:8080/api/partner/v1/wallets/wal_123/transactions", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	sign(req, body, "orbt_sk_example", "ws_example", "ssec_example", time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	for _, h := range []string{"x-timestamp", "x-body-hash", "x-signature"} {
		fmt.Println(h+":", req.Header.Get(h))
	}
	// Output:
	// x-timestamp: 2026-11-26T10:00:00Z
	// x-body-hash: /bPFzYtRxud7fWOTC3Iony3irdOcokbIxhsLXIeCz5s=
	// x-signature: Tf6eIjOyuFuLTFdT5ISS1Vf4LOLfzqoX5fH9qGErqGU=
}
