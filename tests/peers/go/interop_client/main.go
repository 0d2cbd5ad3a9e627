// interop_client: the grpc-go "h2lb.Interop" test client (see
// tests/peers/interop.proto). Runs named cases, each repeated on ONE
// grpc.ClientConn (one HTTP/2 connection) and prints one JSON line per case:
//
//	{"case":..., "ok":true|false, "iterations":n, "error":"...",
//	 "elapsed_s":x, "client":"grpc-go", "client_window":w, "server_window":w,
//	 "client_window_grew_at":i}
//
//	interop_client --target HOST:PORT [--cases a,b,...] [--iterations N]
//	    [--small-iterations M] [--call-timeout S] [--timeout S] [--list]
//	interop_client --target HOST:PORT --call PATH [--call-timeout S]
//
// --iterations (default 300) repeats the large-message cases (large_unary,
// server_streaming, client_streaming, ping_pong), --small-iterations
// (default 30) the others. A case stops at its first failing iteration
// ("iterations" counts the ones that passed); the connection is then
// replaced by a new one, so that a broken connection fails one case only.
// Every call has a deadline (--call-timeout, default 10 s) and the run
// stops starting iterations after --timeout (default 300 s).
//
// client_window / server_window: the last SETTINGS_INITIAL_WINDOW_SIZE
// this client / the server announced on the connection (grpc-go's BDP
// estimator raises them as data flows), read from the frames on the wire;
// client_window_grew_at: the iteration of this case during which the
// client's window last grew, 0 if it did not grow during the case.
//
// --call PATH makes one unary call, with an empty request, to PATH (any
// path: a test backend may act on it) and prints the status it ended with,
// {"client":"grpc-go","path","code","message"}, whatever it is (exit 0).
//
// Exit status 0 if every case passed, 1 if one failed, 2 on usage errors.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "h2lb/interoppb"
)

const maxMsg = 64 << 20

var (
	reqSizes  = []int32{27182, 8, 1828, 45904}
	respSizes = []int32{31415, 9, 2653, 58979}
)

const (
	largeReq  = 271828
	largeResp = 314159
	// A status message that needs percent-encoding in grpc-message.
	statusMessage = "test status message: \t\ntabs, CR LF\r\n, BMP \u263a, non-BMP \U0001f608, 100% %41"
	initialValue  = "test_initial_metadata_value"
)

var (
	initialBin  = []byte{0x00, 0x01, 0xfe, 0xff, 0x0a, 0x0d}
	trailingBin = []byte{0xab, 0xab, 0xab, 0x00, 0xca, 0xfe}
)

// ---------------------------------------------------------------- sniffer

// frameSniffer follows the HTTP/2 frames one side writes and remembers the
// last SETTINGS_INITIAL_WINDOW_SIZE it announced.
type frameSniffer struct {
	mu      sync.Mutex
	skip    int // preface bytes still to skip
	hdr     []byte
	payload []byte
	left    int // payload bytes of the current frame still to come
	keep    bool
	window  int64 // atomic
	updates int64 // atomic: SETTINGS frames that changed the window
}

func newSniffer(preface int) *frameSniffer {
	return &frameSniffer{skip: preface, window: 65535}
}

func (f *frameSniffer) feed(b []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(b) > 0 {
		if f.skip > 0 {
			n := min(f.skip, len(b))
			f.skip -= n
			b = b[n:]
			continue
		}
		if f.left == 0 && len(f.hdr) < 9 {
			n := min(9-len(f.hdr), len(b))
			f.hdr = append(f.hdr, b[:n]...)
			b = b[n:]
			if len(f.hdr) < 9 {
				return
			}
			f.left = int(f.hdr[0])<<16 | int(f.hdr[1])<<8 | int(f.hdr[2])
			// SETTINGS without ACK.
			f.keep = f.hdr[3] == 4 && f.hdr[4]&1 == 0
			f.payload = f.payload[:0]
			if f.left == 0 {
				f.frameDone()
			}
			continue
		}
		n := min(f.left, len(b))
		if f.keep {
			f.payload = append(f.payload, b[:n]...)
		}
		f.left -= n
		b = b[n:]
		if f.left == 0 {
			f.frameDone()
		}
	}
}

func (f *frameSniffer) frameDone() {
	if f.keep {
		for p := f.payload; len(p) >= 6; p = p[6:] {
			id := int(p[0])<<8 | int(p[1])
			val := int64(p[2])<<24 | int64(p[3])<<16 | int64(p[4])<<8 | int64(p[5])
			if id == 4 && val != atomic.LoadInt64(&f.window) {
				atomic.StoreInt64(&f.window, val)
				atomic.AddInt64(&f.updates, 1)
			}
		}
	}
	f.hdr = f.hdr[:0]
	f.keep = false
}

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}

type sniffConn struct {
	net.Conn
	out, in *frameSniffer
}

func (c *sniffConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.in.feed(b[:n])
	return n, err
}

func (c *sniffConn) Write(b []byte) (int, error) {
	c.out.feed(b)
	return c.Conn.Write(b)
}

// ---------------------------------------------------------------- cases

type env struct {
	conn        *grpc.ClientConn
	c           pb.InteropClient
	callTimeout time.Duration
	out, in     *frameSniffer
}

func (e *env) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), e.callTimeout)
}

func checkPayload(what string, b []byte, want int32) error {
	if len(b) != int(want) {
		return fmt.Errorf("%s: %d payload bytes, want %d", what, len(b), want)
	}
	if !pb.IsPattern(b) {
		return fmt.Errorf("%s: payload of %d bytes is not the pattern", what, len(b))
	}
	return nil
}

func wantCode(what string, err error, code codes.Code) error {
	if got := status.Code(err); got != code {
		return fmt.Errorf("%s: status %v (%v), want %v", what, got, err, code)
	}
	return nil
}

func largeUnary(e *env) error {
	ctx, cancel := e.ctx()
	defer cancel()
	resp, err := e.c.UnaryCall(ctx, &pb.InteropRequest{
		Payload: pb.Pattern(largeReq), ResponseSize: largeResp})
	if err != nil {
		return err
	}
	if resp.ReceivedBytes != largeReq {
		return fmt.Errorf("server got %d request bytes, want %d", resp.ReceivedBytes, largeReq)
	}
	return checkPayload("reply", resp.Payload, largeResp)
}

func serverStreaming(e *env) error {
	ctx, cancel := e.ctx()
	defer cancel()
	stream, err := e.c.StreamingOutputCall(ctx, &pb.InteropRequest{ResponseSizes: respSizes})
	if err != nil {
		return err
	}
	for i, n := range respSizes {
		resp, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("reply %d: %w", i+1, err)
		}
		if err := checkPayload(fmt.Sprintf("reply %d", i+1), resp.Payload, n); err != nil {
			return err
		}
	}
	if _, err := stream.Recv(); err != io.EOF {
		return fmt.Errorf("after %d replies: %v, want the end of the stream", len(respSizes), err)
	}
	return nil
}

func clientStreaming(e *env) error {
	ctx, cancel := e.ctx()
	defer cancel()
	stream, err := e.c.StreamingInputCall(ctx)
	if err != nil {
		return err
	}
	var total int64
	for i, n := range reqSizes {
		if err := stream.Send(&pb.InteropRequest{Payload: pb.Pattern(int(n))}); err != nil {
			return fmt.Errorf("request %d: %w", i+1, err)
		}
		total += int64(n)
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return err
	}
	if resp.ReceivedBytes != total || resp.ReceivedMessages != int32(len(reqSizes)) {
		return fmt.Errorf("server got %d bytes in %d messages, want %d in %d",
			resp.ReceivedBytes, resp.ReceivedMessages, total, len(reqSizes))
	}
	return nil
}

func pingPong(e *env) error {
	ctx, cancel := e.ctx()
	defer cancel()
	stream, err := e.c.FullDuplexCall(ctx)
	if err != nil {
		return err
	}
	var total int64
	for i := range reqSizes {
		if err := stream.Send(&pb.InteropRequest{
			Payload: pb.Pattern(int(reqSizes[i])), ResponseSize: respSizes[i]}); err != nil {
			return fmt.Errorf("ping %d: %w", i+1, err)
		}
		total += int64(reqSizes[i])
		resp, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("pong %d: %w", i+1, err)
		}
		if err := checkPayload(fmt.Sprintf("pong %d", i+1), resp.Payload, respSizes[i]); err != nil {
			return err
		}
		if resp.ReceivedBytes != total || resp.ReceivedMessages != int32(i+1) {
			return fmt.Errorf("pong %d: server counted %d bytes in %d messages, want %d in %d",
				i+1, resp.ReceivedBytes, resp.ReceivedMessages, total, i+1)
		}
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	if _, err := stream.Recv(); err != io.EOF {
		return fmt.Errorf("after the last pong: %v, want the end of the stream", err)
	}
	return nil
}

func emptyStream(e *env) error {
	ctx, cancel := e.ctx()
	defer cancel()
	stream, err := e.c.FullDuplexCall(ctx)
	if err != nil {
		return err
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	if resp, err := stream.Recv(); err != io.EOF {
		return fmt.Errorf("got %v (reply %v), want the end of the stream", err, resp != nil)
	}
	return nil
}

func cancelAfterBegin(e *env) error {
	ctx, cancel := e.ctx()
	defer cancel()
	cctx, ccancel := context.WithCancel(ctx)
	stream, err := e.c.StreamingInputCall(cctx)
	if err != nil {
		ccancel()
		return err
	}
	ccancel()
	_, err = stream.CloseAndRecv()
	return wantCode("after cancel", err, codes.Canceled)
}

func cancelAfterFirstResponse(e *env) error {
	ctx, cancel := e.ctx()
	defer cancel()
	cctx, ccancel := context.WithCancel(ctx)
	defer ccancel()
	stream, err := e.c.FullDuplexCall(cctx)
	if err != nil {
		return err
	}
	if err := stream.Send(&pb.InteropRequest{
		Payload: pb.Pattern(int(reqSizes[0])), ResponseSize: respSizes[0]}); err != nil {
		return err
	}
	resp, err := stream.Recv()
	if err != nil {
		return fmt.Errorf("first reply: %w", err)
	}
	if err := checkPayload("first reply", resp.Payload, respSizes[0]); err != nil {
		return err
	}
	ccancel()
	_, err = stream.Recv()
	return wantCode("after cancel", err, codes.Canceled)
}

func timeoutOnSleepingServer(e *env) error {
	const deadline = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	t0 := time.Now()
	stream, err := e.c.FullDuplexCall(ctx)
	if err == nil {
		// Send may see the deadline already (io.EOF): Recv has the status.
		_ = stream.Send(&pb.InteropRequest{
			Payload: pb.Pattern(int(reqSizes[0])), ResponseSize: 1, SleepMs: 5000})
		_, err = stream.Recv()
	}
	if err := wantCode("sleeping server", err, codes.DeadlineExceeded); err != nil {
		return err
	}
	if d := time.Since(t0); d > 2*time.Second {
		return fmt.Errorf("DEADLINE_EXCEEDED after %v, deadline %v", d, deadline)
	}
	return nil
}

func checkMD(what string, md metadata.MD, key string, want []byte) error {
	v := md.Get(key)
	if len(v) != 1 || !bytes.Equal([]byte(v[0]), want) {
		return fmt.Errorf("%s %s: %q, want [%q]", what, key, v, want)
	}
	return nil
}

func checkEcho(hdr, trl metadata.MD) error {
	if err := checkMD("initial metadata", hdr, pb.InitialKey, []byte(initialValue)); err != nil {
		return err
	}
	if err := checkMD("initial metadata", hdr, pb.InitialBinKey, initialBin); err != nil {
		return err
	}
	return checkMD("trailing metadata", trl, pb.TrailingBinKey, trailingBin)
}

func customMetadata(e *env) error {
	md := metadata.Pairs(pb.InitialKey, initialValue,
		pb.InitialBinKey, string(initialBin), pb.TrailingBinKey, string(trailingBin))
	ctx, cancel := e.ctx()
	defer cancel()
	ctx = metadata.NewOutgoingContext(ctx, md)

	var hdr, trl metadata.MD
	resp, err := e.c.UnaryCall(ctx, &pb.InteropRequest{
		Payload: pb.Pattern(1024), ResponseSize: 2048}, grpc.Header(&hdr), grpc.Trailer(&trl))
	if err != nil {
		return fmt.Errorf("unary: %w", err)
	}
	if err := checkPayload("unary reply", resp.Payload, 2048); err != nil {
		return err
	}
	if err := checkEcho(hdr, trl); err != nil {
		return fmt.Errorf("unary: %w", err)
	}

	stream, err := e.c.FullDuplexCall(ctx)
	if err != nil {
		return fmt.Errorf("bidi: %w", err)
	}
	if err := stream.Send(&pb.InteropRequest{Payload: pb.Pattern(1024), ResponseSize: 2048}); err != nil {
		return fmt.Errorf("bidi: %w", err)
	}
	if resp, err = stream.Recv(); err != nil {
		return fmt.Errorf("bidi: %w", err)
	}
	if err := checkPayload("bidi reply", resp.Payload, 2048); err != nil {
		return err
	}
	if hdr, err = stream.Header(); err != nil {
		return fmt.Errorf("bidi: %w", err)
	}
	if err := stream.CloseSend(); err != nil {
		return fmt.Errorf("bidi: %w", err)
	}
	if _, err := stream.Recv(); err != io.EOF {
		return fmt.Errorf("bidi: %v, want the end of the stream", err)
	}
	if err := checkEcho(hdr, stream.Trailer()); err != nil {
		return fmt.Errorf("bidi: %w", err)
	}
	return nil
}

func wantStatus(what string, err error, code codes.Code, msg string) error {
	st := status.Convert(err)
	if st.Code() != code || st.Message() != msg {
		return fmt.Errorf("%s: status %v %q, want %v %q", what, st.Code(), st.Message(), code, msg)
	}
	return nil
}

func statusCodeAndMessage(e *env) error {
	ctx, cancel := e.ctx()
	defer cancel()
	_, err := e.c.UnaryCall(ctx, &pb.InteropRequest{
		StatusCode: int32(codes.Unknown), StatusMessage: statusMessage})
	if err := wantStatus("unary", err, codes.Unknown, statusMessage); err != nil {
		return err
	}
	stream, err := e.c.FullDuplexCall(ctx)
	if err != nil {
		return err
	}
	if err := stream.Send(&pb.InteropRequest{
		StatusCode: int32(codes.FailedPrecondition), StatusMessage: statusMessage}); err != nil {
		return err
	}
	_, err = stream.Recv()
	return wantStatus("bidi", err, codes.FailedPrecondition, statusMessage)
}

func unimplementedMethod(e *env) error {
	ctx, cancel := e.ctx()
	defer cancel()
	for _, path := range []string{"/h2lb.Interop/UnimplementedCall", "/h2lb.NoSuchService/UnimplementedCall"} {
		err := e.conn.Invoke(ctx, path, &pb.InteropRequest{}, &pb.InteropResponse{})
		if err := wantCode(path, err, codes.Unimplemented); err != nil {
			return err
		}
	}
	return nil
}

type testCase struct {
	name  string
	large bool
	fn    func(*env) error
}

var cases = []testCase{
	{"large_unary", true, largeUnary},
	{"server_streaming", true, serverStreaming},
	{"client_streaming", true, clientStreaming},
	{"ping_pong", true, pingPong},
	{"empty_stream", false, emptyStream},
	{"cancel_after_begin", false, cancelAfterBegin},
	{"cancel_after_first_response", false, cancelAfterFirstResponse},
	{"timeout_on_sleeping_server", false, timeoutOnSleepingServer},
	{"custom_metadata", false, customMetadata},
	{"status_code_and_message", false, statusCodeAndMessage},
	{"unimplemented_method", false, unimplementedMethod},
}

// ---------------------------------------------------------------- main

type result struct {
	Case        string  `json:"case"`
	OK          bool    `json:"ok"`
	Iterations  int     `json:"iterations"`
	Error       string  `json:"error,omitempty"`
	ElapsedS    float64 `json:"elapsed_s"`
	Client      string  `json:"client"`
	ClientWin   int64   `json:"client_window"`
	ServerWin   int64   `json:"server_window"`
	WinGrewAt   int     `json:"client_window_grew_at"`
	Reconnected bool    `json:"reconnected,omitempty"`
}

func dial(target string, callTimeout time.Duration) (*env, error) {
	e := &env{callTimeout: callTimeout, out: newSniffer(24), in: newSniffer(0)}
	dialer := func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return &sniffConn{Conn: c, out: e.out, in: e.in}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	conn, err := grpc.DialContext(ctx, target, grpc.WithInsecure(), grpc.WithBlock(),
		grpc.WithContextDialer(dialer),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsg), grpc.MaxCallSendMsgSize(maxMsg)))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", target, err)
	}
	e.conn, e.c = conn, pb.NewInteropClient(conn)
	return e, nil
}

func ptr(d time.Duration) *time.Duration { return &d }

// callOnce makes one unary call to path and prints the status it ended with.
func callOnce(target, path string, callTimeout time.Duration) {
	r := struct {
		Client  string `json:"client"`
		Path    string `json:"path"`
		Code    string `json:"code"`
		Message string `json:"message"`
	}{Client: "grpc-go", Path: path}
	e, err := dial(target, callTimeout)
	if err == nil {
		ctx, cancel := e.ctx()
		err = e.conn.Invoke(ctx, path, &pb.InteropRequest{}, &pb.InteropResponse{})
		cancel()
		e.conn.Close()
	}
	st := status.Convert(err)
	r.Code, r.Message = st.Code().String(), st.Message()
	json.NewEncoder(os.Stdout).Encode(r)
}

func main() {
	target := flag.String("target", "", "HOST:PORT of the server")
	only := flag.String("cases", "", "comma-separated cases to run (default: all)")
	iters := flag.Int("iterations", 300, "iterations of the large-message cases")
	small := flag.Int("small-iterations", 30, "iterations of the other cases")
	callTimeoutS := flag.Float64("call-timeout", 10, "deadline of each call, seconds")
	timeoutS := flag.Float64("timeout", 300, "no iteration starts after this many seconds")
	list := flag.Bool("list", false, "print the case names and exit")
	call := flag.String("call", "", "make one unary call to this path and print its status")
	flag.Parse()
	if *list {
		for _, c := range cases {
			fmt.Println(c.name)
		}
		return
	}
	callTimeout := ptr(time.Duration(*callTimeoutS * float64(time.Second)))
	timeout := ptr(time.Duration(*timeoutS * float64(time.Second)))
	if *target == "" || *iters < 0 || *small < 0 || *callTimeout <= 0 || *timeout <= 0 {
		fmt.Fprintln(os.Stderr, "usage: interop_client --target HOST:PORT [--cases a,b] [--iterations N] [--small-iterations M]")
		os.Exit(2)
	}
	if *call != "" {
		callOnce(*target, *call, *callTimeout)
		return
	}
	run := cases
	if *only != "" {
		run = nil
		for _, name := range strings.Split(*only, ",") {
			found := false
			for _, c := range cases {
				if c.name == name {
					run, found = append(run, c), true
				}
			}
			if !found {
				fmt.Fprintf(os.Stderr, "interop_client: unknown case %q\n", name)
				os.Exit(2)
			}
		}
	}

	start := time.Now()
	end := start.Add(*timeout)
	// A watchdog in case something ignores its deadline.
	go func() {
		time.Sleep(*timeout + *callTimeout + 10*time.Second)
		fmt.Fprintln(os.Stderr, "interop_client: watchdog: the run hangs")
		os.Exit(1)
	}()

	enc := json.NewEncoder(os.Stdout)
	failed := 0
	var e *env
	reconnect := false
	for _, tc := range run {
		r := result{Case: tc.name, Client: "grpc-go", Reconnected: reconnect}
		t0 := time.Now()
		n := *small
		if tc.large {
			n = *iters
		}
		var err error
		if e == nil {
			e, err = dial(*target, *callTimeout)
		}
		if err == nil {
			w0 := atomic.LoadInt64(&e.out.window)
			for i := 1; i <= n; i++ {
				if time.Now().After(end) {
					err = fmt.Errorf("iteration %d: --timeout %v reached", i, *timeout)
					break
				}
				if err = tc.fn(e); err != nil {
					err = fmt.Errorf("iteration %d: %w", i, err)
					break
				}
				r.Iterations = i
				if w := atomic.LoadInt64(&e.out.window); w != w0 {
					r.WinGrewAt, w0 = i, w
				}
			}
			r.ClientWin = atomic.LoadInt64(&e.out.window)
			r.ServerWin = atomic.LoadInt64(&e.in.window)
		}
		r.ElapsedS = float64(time.Since(t0).Milliseconds()) / 1000
		r.OK = err == nil
		reconnect = false
		if err != nil {
			r.Error = err.Error()
			failed++
			// A new connection for the next case.
			if e != nil {
				e.conn.Close()
				e = nil
			}
			reconnect = true
		}
		_ = enc.Encode(&r)
	}
	if e != nil {
		e.conn.Close()
	}
	fmt.Fprintf(os.Stderr, "interop_client: %d passed, %d failed in %.1fs\n",
		len(run)-failed, failed, time.Since(start).Seconds())
	if failed > 0 {
		os.Exit(1)
	}
}
