// Hand-written part of package interoppb (the rest is generated from
// tests/peers/interop.proto by tests/peers/go/build.sh): the payload pattern
// both sides check, and the metadata keys the servers echo.
package interoppb

import (
	"bytes"
	"sync"
)

// Metadata the servers echo (see interop.proto).
const (
	InitialKey     = "x-interop-initial"
	InitialBinKey  = "x-interop-initial-bin"
	TrailingBinKey = "x-interop-trailing-bin"
)

var patterns sync.Map // int -> []byte

// Pattern returns the n-byte payload: byte i is (i + n) % 251. The slice
// is shared: do not modify it.
func Pattern(n int) []byte {
	if n <= 0 {
		return nil
	}
	if p, ok := patterns.Load(n); ok {
		return p.([]byte)
	}
	p := make([]byte, n)
	for i := range p {
		p[i] = byte((i + n) % 251)
	}
	patterns.Store(n, p)
	return p
}

// IsPattern tells whether b is the len(b)-byte pattern.
func IsPattern(b []byte) bool {
	return bytes.Equal(b, Pattern(len(b)))
}
