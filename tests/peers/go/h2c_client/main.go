// h2c_client - Go's own HTTP/2 client (golang.org/x/net/http2, cleartext
// with prior knowledge) for test_h2lb_fast_path: --requests GETs of --url,
// one after the other on one connection, each with a header field of
// --header-bytes bytes. Go's client writes a frame larger than its 4 KiB
// buffer (bufio) with a write of its own, so a header block longer than a
// frame leaves in several writes, all but the last ending inside it.
//
// With --oversize BYTES, one more GET goes after the first, with a header
// field that large: over h2lb's SETTINGS_MAX_HEADER_LIST_SIZE, Go's client
// must refuse to send it, and the connection must serve the rest.
//
// Prints one JSON line: {"ok": responses with :status 200 and a body,
// "errors", "first_error", "writes": write() calls on the connection,
// "max_write": the largest, "conns": connections dialled, and with
// --oversize "oversize_error": what Go said of that request, "" if it
// was answered}; exits 0 if every request got its 200 on one connection
// (and the oversized one an error), else 1.
package main

import (
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// countConn counts the writes on a connection and the largest one.
type countConn struct {
	net.Conn
	mu       *sync.Mutex
	writes   *int
	maxWrite *int
}

func (c countConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	*c.writes++
	if len(b) > *c.maxWrite {
		*c.maxWrite = len(b)
	}
	c.mu.Unlock()
	return c.Conn.Write(b)
}

func main() {
	url := flag.String("url", "", "http://HOST:PORT/PATH")
	requests := flag.Int("requests", 20, "GETs, one after the other")
	headerBytes := flag.Int("header-bytes", 40000, "bytes of the x-pad header field")
	timeout := flag.Float64("timeout", 30, "seconds for all of it")
	oversize := flag.Int("oversize", 0, "bytes of the header field of one more GET that must fail")
	flag.Parse()
	if *url == "" {
		fmt.Fprintln(os.Stderr, "h2c_client: --url is required")
		os.Exit(2)
	}

	var mu sync.Mutex
	writes, maxWrite, conns := 0, 0, 0
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLS: func(network, addr string, _ *tls.Config) (net.Conn, error) {
			c, err := net.DialTimeout(network, addr, 5*time.Second)
			if err != nil {
				return nil, err
			}
			mu.Lock()
			conns++
			mu.Unlock()
			return countConn{c, &mu, &writes, &maxWrite}, nil
		},
	}
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}

	// Characters whose HPACK Huffman codes are 8 bits long: the encoder
	// then sends the value as it is, and the block is as long as asked.
	const chars = "&*,;XZ"
	padding := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = chars[rand.Intn(len(chars))]
		}
		return string(b)
	}
	pad := padding(*headerBytes)

	get := func(pad string) error {
		req, err := http.NewRequest("GET", *url, nil)
		if err != nil {
			return err
		}
		req.Header.Set("x-pad", pad)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != 200 || len(body) == 0 {
			return fmt.Errorf("status %d, %d bytes of body", resp.StatusCode, len(body))
		}
		return nil
	}

	ok, errs, firstErr := 0, 0, ""
	oversizeErr := ""
	deadline := time.Now().Add(time.Duration(*timeout * float64(time.Second)))
	for i := 0; i < *requests && time.Now().Before(deadline); i++ {
		// (after the first answer: h2lb's SETTINGS came before it)
		if i == 1 && *oversize > 0 {
			if err := get(padding(*oversize)); err != nil {
				oversizeErr = err.Error()
			}
		}
		if err := get(pad); err != nil {
			errs++
			if firstErr == "" {
				firstErr = fmt.Sprintf("request %d: %v", i+1, err)
			}
			continue
		}
		ok++
	}

	mu.Lock()
	out, _ := json.Marshal(map[string]interface{}{
		"ok": ok, "errors": errs, "first_error": firstErr,
		"writes": writes, "max_write": maxWrite, "conns": conns,
		"oversize_error": oversizeErr,
	})
	mu.Unlock()
	fmt.Println(string(out))
	if ok != *requests || conns != 1 || (*oversize > 0 && oversizeErr == "") {
		os.Exit(1)
	}
}
