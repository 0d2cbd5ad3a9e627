// SPDX-License-Identifier: GPL-2.0
/*
 * Where the API server is and how to authenticate: the pod's service
 * account (in-cluster) or a kubeconfig file. Kubeconfigs are YAML; they
 * are read with libyaml into a json-c tree so that one API walks both
 * the kubeconfig and the API objects.
 *
 * Supported kubeconfig fields: clusters[].cluster.{server,
 * certificate-authority, certificate-authority-data,
 * insecure-skip-tls-verify}, users[].user.{token, tokenFile,
 * client-certificate(-data), client-key(-data)}, contexts, current-context.
 * exec and auth-provider plugins are refused with a clear message: they
 * run programs, which a node daemon should not do.
 */
#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <yaml.h>

#include "internal.h"

#define MAX_FILE  (4 << 20)
#define MAX_DEPTH 64

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* The whole file, NUL-terminated. */
static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t n = 0;

	if (!f)
		return NULL;
	buf = malloc(MAX_FILE + 1);
	if (buf)
		n = fread(buf, 1, MAX_FILE + 1, f);
	if (buf && (ferror(f) || n > MAX_FILE)) {
		free(buf);
		buf = NULL;
		errno = EFBIG;
	}
	fclose(f);
	if (buf) {
		buf[n] = 0;
		if (len)
			*len = n;
	}
	return buf;
}

/* ---- base64 */

static int b64_val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

int k8s_base64_decode(const char *in, char **out, size_t *outlen)
{
	size_t len = strlen(in), n = 0;
	uint32_t acc = 0;
	int bits = 0;
	char *buf = malloc(len / 4 * 3 + 4);

	if (!buf)
		return -1;
	for (const char *p = in; *p && *p != '='; p++) {
		int v = b64_val((unsigned char)*p);

		if (v < 0) {
			if (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
				continue;
			free(buf);
			return -1;
		}
		acc = acc << 6 | v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[n++] = acc >> bits & 0xff;
		}
	}
	buf[n] = 0;
	*out = buf;
	*outlen = n;
	return 0;
}

/* ---- YAML to json-c */

static struct json_object *yaml_node(yaml_document_t *doc, yaml_node_t *node,
				     int depth)
{
	struct json_object *o = NULL;

	if (!node || depth > MAX_DEPTH)
		return NULL;
	switch (node->type) {
	case YAML_SCALAR_NODE:
		return json_object_new_string_len(
			(const char *)node->data.scalar.value,
			node->data.scalar.length);
	case YAML_SEQUENCE_NODE:
		o = json_object_new_array();
		for (yaml_node_item_t *i = node->data.sequence.items.start;
		     i < node->data.sequence.items.top; i++) {
			struct json_object *v =
				yaml_node(doc, yaml_document_get_node(doc, *i),
					  depth + 1);

			if (!v)
				goto fail;
			json_object_array_add(o, v);
		}
		return o;
	case YAML_MAPPING_NODE:
		o = json_object_new_object();
		for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
		     p < node->data.mapping.pairs.top; p++) {
			yaml_node_t *k = yaml_document_get_node(doc, p->key);
			struct json_object *v;

			if (!k || k->type != YAML_SCALAR_NODE)
				goto fail;
			v = yaml_node(doc,
				      yaml_document_get_node(doc, p->value),
				      depth + 1);
			if (!v)
				goto fail;
			json_object_object_add(
				o, (const char *)k->data.scalar.value, v);
		}
		return o;
	default:
		return NULL;
	}
fail:
	json_object_put(o);
	return NULL;
}

struct json_object *k8s_yaml_parse(const char *text, size_t len, char *err,
				   size_t errlen)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	struct json_object *o = NULL;

	if (!yaml_parser_initialize(&parser)) {
		fail(err, errlen, "out of memory");
		return NULL;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		fail(err, errlen, "YAML error at line %zu: %s",
		     parser.problem_mark.line + 1,
		     parser.problem ? parser.problem : "?");
		yaml_parser_delete(&parser);
		return NULL;
	}
	o = yaml_node(&doc, yaml_document_get_root_node(&doc), 0);
	if (!o)
		fail(err, errlen, "empty or unusable YAML document");
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return o;
}

/* ---- kubeconfig */

/* The @field of the entry of list @list named @name. */
static struct json_object *named(struct json_object *root, const char *list,
				 const char *name, const char *field)
{
	struct json_object *a = k8s_jget(root, list);

	for (size_t i = 0; name && json_object_is_type(a, json_type_array) &&
			   i < json_object_array_length(a);
	     i++) {
		struct json_object *e = json_object_array_get_idx(a, i);
		const char *n = k8s_jstr(e, "name");

		if (n && !strcmp(n, name))
			return k8s_jget(e, field);
	}
	return NULL;
}

static char *path_in(const char *dir, const char *p)
{
	char *out;

	if (p[0] == '/' || !dir)
		return strdup(p);
	if (asprintf(&out, "%s/%s", dir, p) < 0)
		return NULL;
	return out;
}

/* A "-data" field (base64 PEM) or a file path field, whichever is set. */
static int pem_field(struct json_object *o, const char *name, const char *dir,
		     char **file, char **data, size_t *len, char *err,
		     size_t errlen)
{
	char key[64];
	const char *v;

	snprintf(key, sizeof(key), "%s-data", name);
	v = k8s_jstr(o, key);
	if (v && *v) {
		if (k8s_base64_decode(v, data, len))
			return fail(err, errlen, "%s: bad base64", key);
		return 0;
	}
	v = k8s_jstr(o, name);
	if (v && *v && !(*file = path_in(dir, v)))
		return fail(err, errlen, "out of memory");
	return 0;
}

int k8s_config_parse(struct k8s_config *c, const char *text, size_t len,
		     const char *dir, const char *context, char *err,
		     size_t errlen)
{
	struct json_object *root, *ctx, *cluster, *user;
	const char *cname, *uname, *server, *v;
	int ret = -1;

	memset(c, 0, sizeof(*c));
	root = k8s_yaml_parse(text, len, err, errlen);
	if (!root)
		return -1;
	if (!context)
		context = k8s_jstr(root, "current-context");
	if (!context || !*context) {
		fail(err, errlen, "no current-context and no --context");
		goto out;
	}
	ctx = named(root, "contexts", context, "context");
	if (!ctx) {
		fail(err, errlen, "context '%s' not found", context);
		goto out;
	}
	cname = k8s_jstr(ctx, "cluster");
	uname = k8s_jstr(ctx, "user");
	cluster = named(root, "clusters", cname, "cluster");
	user = named(root, "users", uname, "user");
	server = k8s_jstr(cluster, "server");
	if (!server || !*server) {
		fail(err, errlen, "context '%s': cluster '%s' has no server",
		     context, cname ? cname : "");
		goto out;
	}
	if (strncmp(server, "https://", 8) && strncmp(server, "http://", 7)) {
		fail(err, errlen, "server '%s' is not an http(s) URL", server);
		goto out;
	}
	if (k8s_jget(user, "exec") || k8s_jget(user, "auth-provider")) {
		fail(err, errlen,
		     "user '%s': exec and auth-provider plugins are not supported; use a token or a client certificate",
		     uname ? uname : "");
		goto out;
	}
	c->server = strdup(server);
	if (!c->server)
		goto oom;
	while (c->server[strlen(c->server) - 1] == '/')
		c->server[strlen(c->server) - 1] = 0;
	v = k8s_jstr(cluster, "insecure-skip-tls-verify");
	c->insecure = v && !strcmp(v, "true");
	if (pem_field(cluster, "certificate-authority", dir, &c->ca_file,
		      &c->ca_data, &c->ca_len, err, errlen) ||
	    pem_field(user, "client-certificate", dir, &c->cert_file,
		      &c->cert_data, &c->cert_len, err, errlen) ||
	    pem_field(user, "client-key", dir, &c->key_file, &c->key_data,
		      &c->key_len, err, errlen))
		goto out;
	if ((c->cert_file || c->cert_data) != (c->key_file || c->key_data)) {
		fail(err, errlen,
		     "user '%s': a client certificate needs its key",
		     uname ? uname : "");
		goto out;
	}
	v = k8s_jstr(user, "token");
	if (v && *v && !(c->token = strdup(v)))
		goto oom;
	v = k8s_jstr(user, "tokenFile");
	if (!c->token && v && *v && !(c->token_file = path_in(dir, v)))
		goto oom;
	ret = 0;
	goto out;
oom:
	fail(err, errlen, "out of memory");
out:
	json_object_put(root);
	if (ret)
		k8s_config_free(c);
	return ret;
}

int k8s_config_kubeconfig(struct k8s_config *c, const char *path,
			  const char *context, char *err, size_t errlen)
{
	char *text, *copy;
	size_t len;
	int ret;

	memset(c, 0, sizeof(*c));
	text = read_file(path, &len);
	if (!text)
		return fail(err, errlen, "%s: %s", path, strerror(errno));
	copy = strdup(path);
	ret = k8s_config_parse(c, text, len, copy ? dirname(copy) : ".",
			       context, err, errlen);
	if (ret && copy) {
		/* Name the file in the message. */
		char msg[256];

		snprintf(msg, sizeof(msg), "%s", err);
		snprintf(err, errlen, "%s: %s", path, msg);
	}
	free(copy);
	free(text);
	return ret;
}

int k8s_config_incluster(struct k8s_config *c, const char *sa_dir, char *err,
			 size_t errlen)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	char *tok;
	int n;

	memset(c, 0, sizeof(*c));
	if (!host || !*host || !port || !*port)
		return fail(
			err, errlen,
			"not in a cluster (KUBERNETES_SERVICE_HOST/PORT unset); use --kubeconfig");
	n = asprintf(&c->server,
		     strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s",
		     host, port);
	if (n < 0 || asprintf(&c->ca_file, "%s/ca.crt", sa_dir) < 0 ||
	    asprintf(&c->token_file, "%s/token", sa_dir) < 0) {
		k8s_config_free(c);
		return fail(err, errlen, "out of memory");
	}
	tok = k8s_config_token(c);
	if (!tok) {
		fail(err, errlen, "%s: %s", c->token_file, strerror(errno));
		k8s_config_free(c);
		return -1;
	}
	free(tok);
	return 0;
}

char *k8s_config_token(const struct k8s_config *c)
{
	char *t;
	size_t n;

	if (c->token)
		return strdup(c->token);
	if (!c->token_file) {
		errno = ENOENT;
		return NULL;
	}
	t = read_file(c->token_file, &n);
	while (t && n &&
	       (t[n - 1] == '\n' || t[n - 1] == '\r' || t[n - 1] == ' '))
		t[--n] = 0;
	return t;
}

void k8s_config_free(struct k8s_config *c)
{
	free(c->server);
	free(c->ca_file);
	free(c->ca_data);
	free(c->token);
	free(c->token_file);
	free(c->cert_file);
	free(c->key_file);
	free(c->cert_data);
	free(c->key_data);
	memset(c, 0, sizeof(*c));
}
