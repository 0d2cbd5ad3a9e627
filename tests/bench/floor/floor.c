// SPDX-License-Identifier: GPL-2.0
/*
 * floor: a relay of one HTTP/2 client connection to one backend with the
 * same-node fast path's two kernel hand-offs and nothing else
 * (floor.bpf.c; docs/latency.md, "The floor"): the bench's floor target
 * (tests/bench/run.sh).
 *
 *   floor OBJ CGROUP LISTEN_IP PORT BACKEND_IP BACKEND_PORT
 *
 * Start-up, in order: the leg connects first and its backend's first
 * bytes (an HTTP/2 server's SETTINGS) are read here; the leg joins the
 * sockmap; the client, whose socket joins it as it connects (sockops on
 * CGROUP), gets those bytes by TCP; what it writes until it has been
 * quiet for 20 ms (its preface, its first request, its SETTINGS ack)
 * takes TCP too and is handed to the leg here; then the relay says go,
 * and the client's writes go straight to the leg. A client that waits
 * for an answer before it writes more (h2load -c1 -m1) writes nothing
 * meanwhile; bytes that still come by TCP after go would be out of order,
 * and fail the run (exit 1).
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* How long the relay waits for its client. */
#define ACCEPT_MS 30000

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static int prog_fd(struct bpf_object *obj, const char *name)
{
	struct bpf_program *p = bpf_object__find_program_by_name(obj, name);

	return p ? bpf_program__fd(p) : -1;
}

static int addr(struct sockaddr_in *sa, const char *ip, const char *port)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons(atoi(port));
	return inet_pton(AF_INET, ip, &sa->sin_addr) == 1 ? 0 : -1;
}

/* Read what @fd gets until it has been quiet for @quiet_ms. */
static ssize_t read_quiet(int fd, char *buf, size_t size, int quiet_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	size_t got = 0;
	ssize_t n;

	while (got < size && poll(&p, 1, quiet_ms) > 0) {
		n = read(fd, buf + got, size - got);
		if (n <= 0)
			return -1;
		got += n;
	}
	return got;
}

static int write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	for (size_t off = 0; off < len; off += n) {
		n = write(fd, buf + off, len - off);
		if (n <= 0)
			return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static char first[65536], early[65536];
	int map, bss, cg, lfd, leg, acc, one = 1, rc = 1;
	struct bpf_link *link;
	struct sockaddr_in listen_sa, backend_sa;
	__u32 key = 0, port, go = 1;
	__u64 leg_fd;
	ssize_t nfirst, nearly;
	struct bpf_object *obj;
	long late = 0;

	if (argc != 7 || addr(&listen_sa, argv[3], argv[4]) ||
	    addr(&backend_sa, argv[5], argv[6])) {
		fprintf(stderr, "usage: floor OBJ CGROUP LISTEN_IP PORT "
				"BACKEND_IP BACKEND_PORT\n");
		return 2;
	}
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		perror("open");
		return 1;
	}
	port = atoi(argv[4]);
	if (bpf_map__set_initial_value(
		    bpf_object__find_map_by_name(obj, ".rodata"), &port,
		    sizeof(port)) ||
	    bpf_object__load(obj)) {
		fprintf(stderr, "floor: loading %s failed\n", argv[1]);
		return 1;
	}
	map = bpf_map__fd(bpf_object__find_map_by_name(obj, "socks"));
	bss = bpf_map__fd(bpf_object__find_map_by_name(obj, ".bss"));
	if (bpf_prog_attach(prog_fd(obj, "floor_parser"), map,
			    BPF_SK_SKB_STREAM_PARSER, 0) ||
	    bpf_prog_attach(prog_fd(obj, "floor_verdict"), map,
			    BPF_SK_SKB_STREAM_VERDICT, 0) ||
	    bpf_prog_attach(prog_fd(obj, "floor_msg"), map, BPF_SK_MSG_VERDICT,
			    0)) {
		perror("floor: attach to the sockmap");
		return 1;
	}
	/* No SA_RESTART: a signal ends a wait. */
	sigaction(SIGTERM, &(struct sigaction){ .sa_handler = on_signal },
		  NULL);
	sigaction(SIGINT, &(struct sigaction){ .sa_handler = on_signal }, NULL);

	leg = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(leg, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(leg, (struct sockaddr *)&backend_sa, sizeof(backend_sa))) {
		perror("floor: connect to the backend");
		return 1;
	}
	nfirst = read_quiet(leg, first, sizeof(first), 200);
	leg_fd = leg; /* the map's values are 8 bytes */
	if (nfirst < 0 || bpf_map_update_elem(map, &key, &leg_fd, BPF_ANY)) {
		perror("floor: the leg");
		return 1;
	}
	/* A link: gone with this process, however it ends. */
	cg = open(argv[2], O_RDONLY | O_DIRECTORY);
	link = cg < 0 ? NULL
		      : bpf_program__attach_cgroup(
				bpf_object__find_program_by_name(
					obj, "floor_sockops"),
				cg);
	if (!link) {
		perror("floor: attach to the clients' cgroup");
		return 1;
	}
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&listen_sa, sizeof(listen_sa)) ||
	    listen(lfd, 1)) {
		perror("floor: listen");
		goto out;
	}
	printf("listening\n");
	fflush(stdout);
	if (poll(&(struct pollfd){ .fd = lfd, .events = POLLIN }, 1,
		 ACCEPT_MS) <= 0) {
		fprintf(stderr, "floor: no client came\n");
		goto out;
	}
	acc = accept(lfd, NULL, NULL);
	if (acc < 0 || write_all(acc, first, nfirst))
		goto out;
	nearly = read_quiet(acc, early, sizeof(early), 20);
	if (nearly < 0 || write_all(leg, early, nearly) ||
	    bpf_map_update_elem(bss, &key, &go, BPF_ANY))
		goto out;
	printf("go: %zd bytes from the backend and %zd from the client "
	       "before\n",
	       nfirst, nearly);
	fflush(stdout);
	rc = 0;
	while (!stop) {
		struct pollfd p = { .fd = acc, .events = POLLIN };
		char buf[4096];
		ssize_t n;

		if (poll(&p, 1, 200) <= 0)
			continue;
		n = read(acc, buf, sizeof(buf));
		if (n <= 0)
			break;
		late += n; /* written before go, read after: out of order */
	}
	if (late) {
		fprintf(stderr, "floor: %ld bytes the client wrote came late\n",
			late);
		rc = 1;
	}
out:
	bpf_link__destroy(link);
	return rc;
}
