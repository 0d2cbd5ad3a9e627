// interop_server: the grpc-go "h2lb.Interop" test server (see
// tests/peers/interop.proto for the service).
//
//	interop_server --port 50051 [--bind 0.0.0.0] [--name backend-1]
//	    [--static-window BYTES]
//
// Logs to stderr; SIGTERM/SIGINT stop it (graceful for at most 2 s).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "h2lb/interoppb"
)

const maxMsg = 64 << 20

type server struct {
	pb.UnimplementedInteropServer
	name string
}

// echoed returns the initial and trailing metadata to echo for a call.
func echoed(ctx context.Context) (hdr, trl metadata.MD) {
	hdr, trl = metadata.MD{}, metadata.MD{}
	md, _ := metadata.FromIncomingContext(ctx)
	for _, k := range []string{pb.InitialKey, pb.InitialBinKey} {
		if v := md.Get(k); len(v) > 0 {
			hdr.Set(k, v...)
		}
	}
	if v := md.Get(pb.TrailingBinKey); len(v) > 0 {
		trl.Set(pb.TrailingBinKey, v...)
	}
	return hdr, trl
}

func (s *server) trailer(ctx context.Context) (metadata.MD, metadata.MD) {
	hdr, trl := echoed(ctx)
	trl.Set("x-backend", s.name)
	return hdr, trl
}

// check validates a request: its payload must be the pattern.
func check(req *pb.InteropRequest) error {
	if !pb.IsPattern(req.Payload) {
		return status.Errorf(codes.DataLoss, "request payload of %d bytes is not the pattern", len(req.Payload))
	}
	return nil
}

// sleep waits ms milliseconds, or until the call ends.
func sleep(ctx context.Context, ms int32) error {
	if ms <= 0 {
		return nil
	}
	t := time.NewTimer(time.Duration(ms) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}

// requested returns the status the request asks for, if any.
func requested(req *pb.InteropRequest) error {
	if req.StatusCode != 0 {
		return status.Error(codes.Code(req.StatusCode), req.StatusMessage)
	}
	return nil
}

func (s *server) UnaryCall(ctx context.Context, req *pb.InteropRequest) (*pb.InteropResponse, error) {
	hdr, trl := s.trailer(ctx)
	if err := grpc.SetHeader(ctx, hdr); err != nil {
		return nil, err
	}
	if err := grpc.SetTrailer(ctx, trl); err != nil {
		return nil, err
	}
	if err := check(req); err != nil {
		return nil, err
	}
	if err := sleep(ctx, req.SleepMs); err != nil {
		return nil, err
	}
	if err := requested(req); err != nil {
		return nil, err
	}
	return &pb.InteropResponse{
		Payload:          pb.Pattern(int(req.ResponseSize)),
		ReceivedBytes:    int64(len(req.Payload)),
		ReceivedMessages: 1,
	}, nil
}

func (s *server) StreamingOutputCall(req *pb.InteropRequest, stream pb.Interop_StreamingOutputCallServer) error {
	ctx := stream.Context()
	hdr, trl := s.trailer(ctx)
	stream.SetTrailer(trl)
	if err := stream.SetHeader(hdr); err != nil {
		return err
	}
	if err := check(req); err != nil {
		return err
	}
	if err := requested(req); err != nil {
		return err
	}
	for _, n := range req.ResponseSizes {
		if err := sleep(ctx, req.SleepMs); err != nil {
			return err
		}
		if err := stream.Send(&pb.InteropResponse{
			Payload:          pb.Pattern(int(n)),
			ReceivedBytes:    int64(len(req.Payload)),
			ReceivedMessages: 1,
		}); err != nil {
			return err
		}
	}
	return nil
}

func (s *server) StreamingInputCall(stream pb.Interop_StreamingInputCallServer) error {
	ctx := stream.Context()
	hdr, trl := s.trailer(ctx)
	stream.SetTrailer(trl)
	if err := stream.SetHeader(hdr); err != nil {
		return err
	}
	var got int64
	var msgs int32
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := check(req); err != nil {
			return err
		}
		if err := requested(req); err != nil {
			return err
		}
		got += int64(len(req.Payload))
		msgs++
	}
	return stream.SendAndClose(&pb.InteropResponse{ReceivedBytes: got, ReceivedMessages: msgs})
}

func (s *server) FullDuplexCall(stream pb.Interop_FullDuplexCallServer) error {
	ctx := stream.Context()
	hdr, trl := s.trailer(ctx)
	stream.SetTrailer(trl)
	if err := stream.SetHeader(hdr); err != nil {
		return err
	}
	var got int64
	var msgs int32
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := check(req); err != nil {
			return err
		}
		got += int64(len(req.Payload))
		msgs++
		if err := sleep(ctx, req.SleepMs); err != nil {
			return err
		}
		if err := requested(req); err != nil {
			return err
		}
		sizes := req.ResponseSizes
		if len(sizes) == 0 {
			sizes = []int32{req.ResponseSize}
		}
		for _, n := range sizes {
			if err := stream.Send(&pb.InteropResponse{
				Payload:          pb.Pattern(int(n)),
				ReceivedBytes:    got,
				ReceivedMessages: msgs,
			}); err != nil {
				return err
			}
		}
	}
}

func main() {
	port := flag.Int("port", 50051, "TCP port")
	bind := flag.String("bind", "0.0.0.0", "address to listen on")
	name := flag.String("name", "go-interop", "name sent in the x-backend trailer")
	window := flag.Int("static-window", 0,
		"fixed stream and connection receive windows (>= 65535), which turns grpc-go's BDP estimator off; 0: dynamic windows")
	flag.Parse()
	log.SetPrefix(fmt.Sprintf("interop_server[%s] ", *name))

	lis, err := net.Listen("tcp", net.JoinHostPort(*bind, fmt.Sprint(*port)))
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	opts := []grpc.ServerOption{grpc.MaxRecvMsgSize(maxMsg), grpc.MaxSendMsgSize(maxMsg)}
	if *window > 0 {
		opts = append(opts, grpc.InitialWindowSize(int32(*window)), grpc.InitialConnWindowSize(int32(*window)))
	}
	s := grpc.NewServer(opts...)
	pb.RegisterInteropServer(s, &server{name: *name})

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		log.Printf("stopping")
		done := make(chan struct{})
		go func() { s.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			s.Stop()
		}
	}()
	log.Printf("listening on %s (grpc-go %s, %s)", lis.Addr(), grpc.Version, runtime.Version())
	if err := s.Serve(lis); err != nil {
		log.Fatalf("serve: %v", err)
	}
}
