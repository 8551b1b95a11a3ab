// Runs the Go verification example of the integration guide over the cases on stdin (a JSON
// list of {secret, headers, body}); prints "accepted" or "rejected" per case.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"guide/webhooks"
)

type testCase struct {
	Secret  string            `json:"secret"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

func main() {
	var cases []testCase
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	guard := &webhooks.ReplayGuard{}
	for _, c := range cases {
		now := time.Now()
		id := c.Headers["webhook-id"]
		err := webhooks.Verify([]byte(c.Body), id, c.Headers["webhook-timestamp"], c.Headers["webhook-signature"], c.Secret, now)
		if err == nil && guard.FirstTime(id, now) {
			fmt.Println("accepted")
		} else {
			fmt.Println("rejected")
		}
	}
}
