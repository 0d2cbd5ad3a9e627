// SPDX-License-Identifier: GPL-2.0
/*
 * Kubernetes discovery: list, then watch, Services and EndpointSlices
 * over HTTPS with libcurl, and publish snapshots to the daemon.
 *
 * Why a thread and not the daemon's epoll loop: that loop answers the
 * kernel's SETTINGS and window events, and a stall there stalls every
 * balanced connection's flow control. The API server side can take long
 * stretches of CPU (a TLS handshake, parsing a list page of 500 slices),
 * and curl's multi-socket plumbing would thread curl's sockets and timers
 * through the daemon's epoll tags. So everything Kubernetes lives in this
 * thread, with its own curl multi handle; the daemon sees one eventfd and
 * takes immutable snapshots (k8s_take), built only when both resources
 * are synced and published only when they differ from the last one. The
 * stores are this thread's alone; the only shared state is the one
 * snapshot slot under a mutex.
 *
 * Protocol, as client-go's reflector does it: list in pages of 500
 * (limit/continue), swap the result in whole, then watch from the list's
 * resourceVersion with allowWatchBookmarks; follow the resourceVersion of
 * every event and bookmark; when a watch ends, watch again from there. A
 * 410 Gone (as the HTTP status or as an ERROR event) means that
 * resourceVersion is compacted away: relist. Errors back off
 * exponentially (0.5 s doubling to 30 s, jittered); a watch that lived
 * or delivered something resets the backoff.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "internal.h"
#include "log.h"

#define PAGE_SIZE      500
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define WATCH_MIN_S    300   /* server-side timeout: random in [MIN, 2*MIN] */
#define LIVED_MS       10000 /* a watch this old was healthy */
#define MAX_BODY       (128 << 20)
#define MAX_ERR_BODY   4096
#define JSON_DEPTH     64 /* managedFields nest deep */
#define PUBLISH_MS                                                             \
	50 /* at most one snapshot per 50 ms: a rollout's burst of
		       * events costs a few rebuilds, not one per event */

enum xfer_type { X_LIST, X_WATCH, X_NODE };

struct k8s;

/* One resource, listed then watched. */
struct watcher {
	const char *what;	  /* for messages */
	const char *group_path;	  /* "/api/v1" or "/apis/discovery.k8s.io/v1" */
	const char *resource;	  /* "services", "endpointslices" */
	struct k8s_store store;	  /* what the daemon sees */
	struct k8s_store pending; /* a list being read, page by page */
	char rv[64];
	char *cont; /* continue token of the next page */
	bool synced;
	bool relist; /* the next start is a list, not a watch */
	int failures;
	int gones;	   /* 410s in a row */
	uint64_t retry_at; /* when idle: start then */
	struct xfer *x;	   /* the transfer in flight, or NULL */
};

/* One HTTP request. */
struct xfer {
	struct k8s *k;
	struct watcher *w; /* NULL for the node */
	enum xfer_type type;
	CURL *easy;
	struct curl_slist *hdrs;
	char *buf; /* list/node body, or an error body */
	size_t len;
	json_tokener *tok; /* watch stream */
	long status;
	uint64_t started;
	bool got_event; /* watch: an event or bookmark arrived */
	bool gone;	/* watch: ERROR 410 arrived */
	bool bad;	/* watch: a malformed or unexpected event */
};

struct k8s {
	struct k8s_config cfg;
	char *ns, *node_name;
	char zone[64];
	bool zone_fixed; /* --node-zone */
	CURLM *multi;
	pthread_t thread;
	atomic_bool stop;
	int efd;
	pthread_mutex_t lock;
	struct k8s_snapshot *ready; /* published, not yet taken */
	struct watcher w[2];
	/* The Node, for its zone label. */
	struct xfer *node_x;
	bool node_done;
	int node_failures;
	uint64_t node_retry_at;
	/* Publishing. */
	bool dirty;
	uint64_t published_ms;
	uint64_t seq;
	struct k8s_snapshot *last;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Exponential, capped, with jitter in [delay/2, delay]. */
static uint64_t backoff_ms(int failures)
{
	uint64_t d = BACKOFF_MIN_MS;

	for (int i = 1; i < failures && d < BACKOFF_MAX_MS; i++)
		d *= 2;
	if (d > BACKOFF_MAX_MS)
		d = BACKOFF_MAX_MS;
	return d / 2 + (uint64_t)random() % (d / 2 + 1);
}

/* ---- transfers */

static void xfer_free(struct xfer *x)
{
	if (!x)
		return;
	if (x->easy) {
		curl_multi_remove_handle(x->k->multi, x->easy);
		curl_easy_cleanup(x->easy);
	}
	curl_slist_free_all(x->hdrs);
	if (x->tok)
		json_tokener_free(x->tok);
	free(x->buf);
	free(x);
}

static int buf_add(struct xfer *x, const char *p, size_t n, size_t max)
{
	char *b;

	if (x->len + n > max)
		return -1;
	b = realloc(x->buf, x->len + n + 1);
	if (!b)
		return -1;
	memcpy(b + x->len, p, n);
	x->len += n;
	b[x->len] = 0;
	x->buf = b;
	return 0;
}

static long status_of(struct xfer *x)
{
	if (!x->status)
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
	return x->status;
}

static void on_event(struct xfer *x, struct json_object *ev)
{
	struct watcher *w = x->w;
	int code, r;

	r = k8s_event_apply(&w->store, ev, w->rv, sizeof(w->rv), &code);
	switch (r) {
	case K8S_EV_CHANGED:
		x->k->dirty = true;
		/* fallthrough */
	case K8S_EV_BOOKMARK:
		x->got_event = true;
		pr_debug("k8s %s: %s, resourceVersion %s", w->what,
			 k8s_jstr(ev, "type"), w->rv);
		break;
	case K8S_EV_ERROR:
		if (code == 410)
			x->gone = true;
		else
			x->bad = true;
		pr_info("k8s %s: watch ERROR %d: %s", w->what, code,
			k8s_jstr(ev, "object.message") ?: "");
		break;
	default:
		pr_warn("k8s %s: ignoring a malformed watch event", w->what);
		break;
	}
}

/* Watch stream: one JSON object per event, parsed as bytes arrive. */
static size_t on_watch_data(char *p, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * nmemb, off = 0;

	if (status_of(x) != 200)
		return buf_add(x, p, len, MAX_ERR_BODY) ? 0 : len;
	while (off < len) {
		struct json_object *ev =
			json_tokener_parse_ex(x->tok, p + off, len - off);
		enum json_tokener_error e = json_tokener_get_error(x->tok);

		if (e == json_tokener_continue)
			break; /* all taken; the object goes on */
		if (e != json_tokener_success) {
			pr_warn("k8s %s: bad JSON in the watch stream: %s",
				x->w->what, json_tokener_error_desc(e));
			x->bad = true;
			return 0; /* aborts the transfer */
		}
		off += json_tokener_get_parse_end(x->tok);
		on_event(x, ev);
		json_object_put(ev);
		if (x->gone || x->bad)
			return 0; /* done with this watch */
	}
	return len;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * nmemb;

	return buf_add(x, p, len, status_of(x) == 200 ? MAX_BODY : MAX_ERR_BODY)
		       ? 0
		       : len;
}

static int set_tls(struct k8s *k, CURL *e)
{
	const struct k8s_config *c = &k->cfg;
	struct curl_blob blob = { .flags = CURL_BLOB_COPY };
	int r = 0;

	if (c->ca_file)
		r |= curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
	if (c->ca_data) {
		blob.data = c->ca_data;
		blob.len = c->ca_len;
		r |= curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
	}
	if (c->cert_file)
		r |= curl_easy_setopt(e, CURLOPT_SSLCERT, c->cert_file);
	if (c->key_file)
		r |= curl_easy_setopt(e, CURLOPT_SSLKEY, c->key_file);
	if (c->cert_data) {
		blob.data = c->cert_data;
		blob.len = c->cert_len;
		r |= curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &blob);
	}
	if (c->key_data) {
		blob.data = c->key_data;
		blob.len = c->key_len;
		r |= curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &blob);
	}
	if (c->insecure) {
		r |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		r |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	return r;
}

/* Start GET @path_query; the token is read anew each time. */
static struct xfer *xfer_start(struct k8s *k, struct watcher *w,
			       enum xfer_type type, const char *path_query,
			       long timeout_s)
{
	struct xfer *x = calloc(1, sizeof(*x));
	char *url = NULL, *auth = NULL, *tok;
	CURL *e;
	int r = 0;

	if (!x)
		return NULL;
	x->k = k;
	x->w = w;
	x->type = type;
	x->started = mono_ms();
	x->easy = e = curl_easy_init();
	if (!e || asprintf(&url, "%s%s", k->cfg.server, path_query) < 0)
		goto fail;
	if (type == X_WATCH && !(x->tok = json_tokener_new_ex(JSON_DEPTH)))
		goto fail;
	tok = k8s_config_token(&k->cfg);
	if (tok) {
		r = asprintf(&auth, "Authorization: Bearer %s", tok);
		free(tok);
		if (r < 0)
			goto fail;
		x->hdrs = curl_slist_append(x->hdrs, auth);
		free(auth);
	} else if (k->cfg.token_file) {
		pr_warn("k8s: %s: %s", k->cfg.token_file, strerror(errno));
	}
	x->hdrs = curl_slist_append(x->hdrs, "Accept: application/json");
	if (!x->hdrs)
		goto fail;
	r = curl_easy_setopt(e, CURLOPT_URL, url);
	r |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
	r |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L); /* threads */
	r |= curl_easy_setopt(e, CURLOPT_USERAGENT, "h2lb");
	r |= curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	r |= curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	r |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION,
			      type == X_WATCH ? on_watch_data : on_body);
	r |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	r |= curl_easy_setopt(e, CURLOPT_TIMEOUT, timeout_s);
	r |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	r |= curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
	r |= curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 10L);
	if (type != X_WATCH) /* the API server gzips large lists */
		r |= curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	r |= set_tls(k, e);
	if (r || curl_multi_add_handle(k->multi, e))
		goto fail;
	free(url);
	return x;
fail:
	pr_err("k8s: cannot start a request to %s%s", k->cfg.server,
	       path_query);
	free(url);
	xfer_free(x);
	return NULL;
}

/* ---- list and watch */

static void schedule(struct watcher *w, bool relist, bool now)
{
	w->relist |= relist;
	w->retry_at = mono_ms() + (now ? 0 : backoff_ms(++w->failures));
}

static void res_path(struct k8s *k, struct watcher *w, char *buf, size_t len)
{
	if (k->ns)
		snprintf(buf, len, "%s/namespaces/%s/%s", w->group_path, k->ns,
			 w->resource);
	else
		snprintf(buf, len, "%s/%s", w->group_path, w->resource);
}

static void watcher_start(struct k8s *k, struct watcher *w)
{
	char path[256], pq[1024];
	char *cont = NULL;

	res_path(k, w, path, sizeof(path));
	if (w->relist) {
		if (w->cont)
			cont = curl_easy_escape(NULL, w->cont, 0);
		snprintf(pq, sizeof(pq), "%s?limit=%d%s%s", path, PAGE_SIZE,
			 cont ? "&continue=" : "", cont ? cont : "");
		curl_free(cont);
		w->x = xfer_start(k, w, X_LIST, pq, 120);
	} else {
		long t = WATCH_MIN_S + random() % (WATCH_MIN_S + 1);

		snprintf(
			pq, sizeof(pq),
			"%s?watch=1&allowWatchBookmarks=true&resourceVersion=%s&timeoutSeconds=%ld",
			path, w->rv, t);
		/* curl's own limit catches a silently dead connection. */
		w->x = xfer_start(k, w, X_WATCH, pq, t + 30);
	}
	if (!w->x)
		schedule(w, false, false);
}

/* The "message" of a metav1.Status body, for logs. */
static const char *status_message(struct xfer *x, char *buf, size_t len)
{
	struct json_object *o = x->buf ? json_tokener_parse(x->buf) : NULL;
	const char *m = k8s_jstr(o, "message");

	snprintf(buf, len, "%s", m ? m : x->buf ? x->buf : "");
	json_object_put(o);
	return buf;
}

static void list_done(struct k8s *k, struct watcher *w, struct xfer *x,
		      CURLcode res)
{
	struct json_object *o = NULL;
	json_tokener *tok;
	char msg[256];

	free(w->cont);
	w->cont = NULL;
	if (res != CURLE_OK || x->status != 200) {
		if (res != CURLE_OK)
			snprintf(msg, sizeof(msg), "%s",
				 curl_easy_strerror(res));
		else
			status_message(x, msg, sizeof(msg));
		k8s_store_clear(&w->pending);
		/* 410 here: the continue token expired; start over. */
		schedule(w, true, false);
		pr_warn("k8s %s: list failed (HTTP %ld): %s", w->what,
			x->status, msg);
		return;
	}
	tok = json_tokener_new_ex(JSON_DEPTH);
	if (tok) {
		o = json_tokener_parse_ex(tok, x->buf ? x->buf : "", x->len);
		json_tokener_free(tok);
	}
	if (!o ||
	    k8s_list_apply(&w->pending, o, w->rv, sizeof(w->rv), &w->cont)) {
		json_object_put(o);
		k8s_store_clear(&w->pending);
		schedule(w, true, false);
		pr_warn("k8s %s: list: malformed response", w->what);
		return;
	}
	json_object_put(o);
	if (w->cont) { /* next page */
		w->retry_at = 0;
		return;
	}
	k8s_store_replace(&w->store, &w->pending);
	w->relist = false;
	w->retry_at = 0;
	w->synced = true;
	k->dirty = true;
	pr_info("k8s %s: listed %zu, resourceVersion %s", w->what, w->store.nr,
		w->rv);
}

static void watch_done(struct k8s *k, struct watcher *w, struct xfer *x,
		       CURLcode res)
{
	uint64_t lived = mono_ms() - x->started;
	char msg[256];

	if (x->got_event || lived >= LIVED_MS)
		w->failures = w->gones = 0;
	if (x->gone || x->status == 410) {
		pr_info("k8s %s: resourceVersion %s is gone (410): relisting",
			w->what, w->rv);
		/* At once, unless relisting keeps ending this way. */
		w->relist = true;
		w->retry_at =
			mono_ms() + (w->gones++ ? backoff_ms(w->gones) : 0);
		return;
	}
	if (res == CURLE_OK && x->status == 200 && !x->bad &&
	    (x->got_event || lived >= 1000)) {
		pr_debug("k8s %s: watch ended, resuming at %s", w->what, w->rv);
		schedule(w, false, true);
		return;
	}
	if (x->bad)
		snprintf(msg, sizeof(msg), "bad event");
	else if (res != CURLE_OK)
		snprintf(msg, sizeof(msg), "%s", curl_easy_strerror(res));
	else if (x->status != 200)
		status_message(x, msg, sizeof(msg));
	else
		snprintf(msg, sizeof(msg), "ended at once");
	schedule(w, false, false);
	pr_info("k8s %s: watch failed (HTTP %ld): %s; again in %llu ms",
		w->what, x->status, msg,
		(unsigned long long)(w->retry_at - mono_ms()));
}

/* ---- the Node's zone */

static void node_start(struct k8s *k)
{
	char *name = curl_easy_escape(NULL, k->node_name, 0);
	char pq[512];

	snprintf(pq, sizeof(pq), "/api/v1/nodes/%s", name ? name : "");
	curl_free(name);
	k->node_x = xfer_start(k, NULL, X_NODE, pq, 30);
	if (!k->node_x)
		k->node_retry_at = mono_ms() + backoff_ms(++k->node_failures);
}

static void node_done(struct k8s *k, struct xfer *x, CURLcode res)
{
	struct json_object *o = NULL;
	char zone[64], msg[256];

	if (res == CURLE_OK && x->status == 200 && x->buf)
		o = json_tokener_parse(x->buf);
	if (!o) {
		if (res != CURLE_OK)
			snprintf(msg, sizeof(msg), "%s",
				 curl_easy_strerror(res));
		else
			status_message(x, msg, sizeof(msg));
		k->node_retry_at = mono_ms() + backoff_ms(++k->node_failures);
		/* Without the zone every ready endpoint is used: say so
		 * once, then quietly keep trying. */
		if (k->node_failures == 1)
			pr_warn("k8s: node %s (HTTP %ld): %s; zone hints unused until it is read",
				k->node_name, x->status, msg);
		return;
	}
	k8s_node_zone(o, zone, sizeof(zone));
	json_object_put(o);
	k->node_done = true;
	pr_info("k8s: node %s, zone '%s'", k->node_name, zone);
	if (strcmp(zone, k->zone)) {
		snprintf(k->zone, sizeof(k->zone), "%s", zone);
		k->dirty = true;
	}
}

/* ---- the thread */

static void publish(struct k8s *k)
{
	struct k8s_snapshot *s, *copy, *old;
	uint64_t one = 1;

	if (!k->dirty || !k->w[0].synced || !k->w[1].synced)
		return;
	/* The first snapshot waits for the Node's zone (or for a failed
	 * try): hints are honoured from the start, not one update later. */
	if (k->node_name && !k->node_done && !k->node_failures)
		return;
	if (mono_ms() < k->published_ms + PUBLISH_MS)
		return; /* next_timeout() wakes us then */
	s = k8s_build(&k->w[0].store, &k->w[1].store, k->zone);
	if (!s)
		return; /* out of memory: stays dirty, tried again */
	k->dirty = false;
	if (k->last && k8s_snapshot_equal(s, k->last)) {
		k8s_snapshot_free(s);
		return;
	}
	s->seq = ++k->seq;
	k->published_ms = mono_ms();
	copy = k8s_snapshot_dup(s);
	if (!copy) {
		k8s_snapshot_free(s);
		k->dirty = true;
		return;
	}
	k8s_snapshot_free(k->last);
	k->last = s;
	pthread_mutex_lock(&k->lock);
	old = k->ready;
	k->ready = copy;
	pthread_mutex_unlock(&k->lock);
	k8s_snapshot_free(old); /* never taken: superseded */
	if (write(k->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		pr_warn("k8s: eventfd: %s", strerror(errno));
}

static void on_done(struct k8s *k, CURLMsg *m)
{
	struct xfer *x = NULL;

	curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
	if (!x)
		return;
	status_of(x);
	if (x->type == X_NODE) {
		k->node_x = NULL;
		node_done(k, x, m->data.result);
	} else {
		x->w->x = NULL;
		if (x->type == X_LIST)
			list_done(k, x->w, x, m->data.result);
		else
			watch_done(k, x->w, x, m->data.result);
	}
	xfer_free(x);
}

static int next_timeout(struct k8s *k, uint64_t now)
{
	uint64_t t = now + 1000;

	for (int i = 0; i < 2; i++)
		if (!k->w[i].x && k->w[i].retry_at < t)
			t = k->w[i].retry_at;
	if (k->node_name && !k->node_done && !k->node_x && k->node_retry_at < t)
		t = k->node_retry_at;
	if (k->dirty && k->published_ms + PUBLISH_MS < t)
		t = k->published_ms + PUBLISH_MS;
	return t > now ? (int)(t - now) : 0;
}

static void *run(void *arg)
{
	struct k8s *k = arg;

	while (!atomic_load(&k->stop)) {
		uint64_t now = mono_ms();
		int running;
		CURLMsg *m;

		for (int i = 0; i < 2; i++)
			if (!k->w[i].x && now >= k->w[i].retry_at)
				watcher_start(k, &k->w[i]);
		if (k->node_name && !k->node_done && !k->node_x &&
		    now >= k->node_retry_at)
			node_start(k);
		curl_multi_perform(k->multi, &running);
		while ((m = curl_multi_info_read(k->multi, &running)))
			if (m->msg == CURLMSG_DONE)
				on_done(k, m);
		publish(k);
		curl_multi_poll(k->multi, NULL, 0, next_timeout(k, mono_ms()),
				NULL);
	}
	return NULL;
}

/* ---- the API */

static bool dns_label(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 63)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

static void k8s_free(struct k8s *k)
{
	for (int i = 0; i < 2; i++) {
		xfer_free(k->w[i].x);
		k8s_store_clear(&k->w[i].store);
		k8s_store_clear(&k->w[i].pending);
		free(k->w[i].cont);
	}
	xfer_free(k->node_x);
	if (k->multi)
		curl_multi_cleanup(k->multi);
	k8s_snapshot_free(k->ready);
	k8s_snapshot_free(k->last);
	if (k->efd >= 0)
		close(k->efd);
	pthread_mutex_destroy(&k->lock);
	k8s_config_free(&k->cfg);
	free(k->ns);
	free(k->node_name);
	free(k);
}

static void global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct k8s *k8s_start(const struct k8s_opts *o, char *err, size_t errlen)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	const char *node = o->node_name ? o->node_name : getenv("NODE_NAME");
	struct k8s *k;
	sigset_t all, old;
	int r;

	/* curl_global_init is not thread-safe: once, from the caller. */
	pthread_once(&once, global_init);
	k = calloc(1, sizeof(*k));
	if (!k) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	k->efd = -1;
	pthread_mutex_init(&k->lock, NULL);
	if (o->ns && !dns_label(o->ns)) {
		snprintf(err, errlen, "bad namespace '%s'", o->ns);
		goto fail;
	}
	r = o->kubeconfig
		    ? k8s_config_kubeconfig(&k->cfg, o->kubeconfig, o->context,
					    err, errlen)
		    : k8s_config_incluster(&k->cfg, K8S_SA_DIR, err, errlen);
	if (r)
		goto fail;
	if ((o->ns && !(k->ns = strdup(o->ns))) ||
	    (node && *node && !(k->node_name = strdup(node))))
		goto oom;
	if (o->node_zone) {
		snprintf(k->zone, sizeof(k->zone), "%s", o->node_zone);
		k->zone_fixed = true;
		free(k->node_name); /* nothing to ask the Node for */
		k->node_name = NULL;
	}
	k->w[0] = (struct watcher){ .what = "services",
				    .group_path = "/api/v1",
				    .resource = "services",
				    .relist = true };
	k->w[1] = (struct watcher){ .what = "endpointslices",
				    .group_path = "/apis/discovery.k8s.io/v1",
				    .resource = "endpointslices",
				    .relist = true };
	k8s_store_init(&k->w[0].store, K8S_SERVICES);
	k8s_store_init(&k->w[0].pending, K8S_SERVICES);
	k8s_store_init(&k->w[1].store, K8S_SLICES);
	k8s_store_init(&k->w[1].pending, K8S_SLICES);
	k->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	k->multi = curl_multi_init();
	if (k->efd < 0 || !k->multi)
		goto oom;
	srandom(mono_ms() ^ getpid());
	/* Signals are the daemon's: the thread takes none of them. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&k->thread, NULL, run, k);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		snprintf(err, errlen, "pthread_create: %s", strerror(r));
		goto fail;
	}
	pr_info("k8s: API server %s%s%s, %s", k->cfg.server,
		k->ns ? ", namespace " : "", k->ns ? k->ns : "",
		k->zone_fixed  ? "zone from --node-zone"
		: k->node_name ? "zone from the Node's label"
			       : "no zone (no node name)");
	return k;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	k8s_free(k);
	return NULL;
}

int k8s_fd(struct k8s *k)
{
	return k->efd;
}

struct k8s_snapshot *k8s_take(struct k8s *k)
{
	struct k8s_snapshot *s;
	uint64_t n;

	if (read(k->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		pr_warn("k8s: eventfd: %s", strerror(errno));
	pthread_mutex_lock(&k->lock);
	s = k->ready;
	k->ready = NULL;
	pthread_mutex_unlock(&k->lock);
	return s;
}

void k8s_stop(struct k8s *k)
{
	if (!k)
		return;
	atomic_store(&k->stop, true);
	curl_multi_wakeup(k->multi);
	pthread_join(k->thread, NULL);
	k8s_free(k);
}
