/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kubernetes discovery internals, shared by k8s*.c and the unit tests:
 * the API server configuration, the object stores and the pure logic that
 * turns Services and EndpointSlices into a snapshot (no I/O here).
 */
#ifndef H2LB_K8S_PRIV_H
#define H2LB_K8S_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "k8s.h"

struct json_object;

#define K8S_SA_DIR	  "/var/run/secrets/kubernetes.io/serviceaccount"
#define K8S_ANN_ENABLED	  "h2lb.io/enabled"
#define K8S_LABEL_SERVICE "kubernetes.io/service-name"
#define K8S_LABEL_ZONE	  "topology.kubernetes.io/zone"

/* ---- configuration (k8s_config.c) */

struct k8s_config {
	char *server;  /* "https://host:port", no trailing slash */
	char *ca_file; /* PEM file, or */
	char *ca_data; /* PEM bytes */
	size_t ca_len;
	char *token;	  /* bearer token, or */
	char *token_file; /* re-read per request: bound tokens rotate */
	char *cert_file, *key_file; /* client certificate, or */
	char *cert_data, *key_data; /* the same as PEM bytes */
	size_t cert_len, key_len;
	bool insecure; /* insecure-skip-tls-verify */
};

int k8s_config_incluster(struct k8s_config *c, const char *sa_dir, char *err,
			 size_t errlen);
int k8s_config_kubeconfig(struct k8s_config *c, const char *path,
			  const char *context, char *err, size_t errlen);
/* The same from the file's text; relative paths are taken from @dir. */
int k8s_config_parse(struct k8s_config *c, const char *text, size_t len,
		     const char *dir, const char *context, char *err,
		     size_t errlen);
void k8s_config_free(struct k8s_config *c);
/* The bearer token to send now (malloc'd), or NULL if none. */
char *k8s_config_token(const struct k8s_config *c);

/* YAML (a kubeconfig) to a json-c tree; scalars become strings. */
struct json_object *k8s_yaml_parse(const char *text, size_t len, char *err,
				   size_t errlen);
/* Decode base64 into a malloc'd, NUL-terminated buffer. */
int k8s_base64_decode(const char *in, char **out, size_t *outlen);

/* ---- parsed objects (k8s_model.c) */

struct k8s_svc_port {
	char name[16];
	uint16_t port;
	bool balanced; /* appProtocol h2c/grpc, or the Service's annotation */
};

struct k8s_svc {
	uint32_t vip;	   /* ClusterIP; Services without one are not kept */
	bool topology_off; /* topology-mode annotation says Disabled */
	int nr_ports;
	struct k8s_svc_port *ports;
};

struct k8s_slice_port {
	char name[16];
	uint16_t port;
};

struct k8s_slice_ep {
	uint32_t addr;
	bool ready, serving, terminating;
	char *zones; /* hints.forZones as ",a,b,", or NULL if no hints */
};

struct k8s_slice {
	char svc[64]; /* label kubernetes.io/service-name */
	int nr_ports;
	struct k8s_slice_port *ports;
	int nr_eps;
	struct k8s_slice_ep *eps;
};

enum k8s_kind { K8S_SERVICES, K8S_SLICES };

/* Objects of one kind keyed by "namespace/name". */
struct k8s_obj {
	struct k8s_obj *next;
	char *key;
	void *rec; /* struct k8s_svc or struct k8s_slice */
};

struct k8s_store {
	enum k8s_kind kind;
	size_t nr, nr_buckets;
	struct k8s_obj **b;
};

void k8s_store_init(struct k8s_store *s, enum k8s_kind kind);
void k8s_store_clear(struct k8s_store *s);
void *k8s_store_get(const struct k8s_store *s, const char *key);
/* Move everything from @from into @to (emptied first); @from ends empty. */
void k8s_store_replace(struct k8s_store *to, struct k8s_store *from);

struct k8s_svc *k8s_svc_parse(struct json_object *o);
struct k8s_slice *k8s_slice_parse(struct json_object *o);
void k8s_svc_free(struct k8s_svc *s);
void k8s_slice_free(struct k8s_slice *s);

/* Store @o under its namespace/name as ADDED/MODIFIED (@del false) or
 * DELETED. Objects h2lb has no use for are removed rather than kept. */
int k8s_store_apply(struct k8s_store *s, struct json_object *o, bool del);

/* A list page into @s; its resourceVersion into @rv and its continue
 * token (malloc'd, NULL on the last page) into @cont. */
int k8s_list_apply(struct k8s_store *s, struct json_object *list, char *rv,
		   size_t rvlen, char **cont);

enum k8s_ev_result {
	K8S_EV_BAD = -1,     /* malformed: ignored */
	K8S_EV_CHANGED = 0,  /* ADDED, MODIFIED, DELETED applied */
	K8S_EV_BOOKMARK = 1, /* only the resourceVersion moved */
	K8S_EV_ERROR = 2,    /* a Status; its code (410: relist) in *code */
};

/* One watch event into @s; @rv follows the object's resourceVersion. */
int k8s_event_apply(struct k8s_store *s, struct json_object *ev, char *rv,
		    size_t rvlen, int *code);

/* The zone label of a Node object into @zone ("" if none). */
void k8s_node_zone(struct json_object *node, char *zone, size_t len);

/* The snapshot of the balanced Service ports (seq 0). */
struct k8s_snapshot *k8s_build(const struct k8s_store *svcs,
			       const struct k8s_store *slices,
			       const char *zone);
struct k8s_snapshot *k8s_snapshot_dup(const struct k8s_snapshot *s);
/* Same services, ports, endpoints and states (seq is not compared). */
bool k8s_snapshot_equal(const struct k8s_snapshot *a,
			const struct k8s_snapshot *b);

/* Small json-c helpers. */
const char *k8s_jstr(struct json_object *o, const char *path);
struct json_object *k8s_jget(struct json_object *o, const char *path);

#endif
