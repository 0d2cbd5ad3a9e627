// SPDX-License-Identifier: GPL-2.0
/* Streaming JSON output: compact, or indented with `-p`. */
#include "json_writer.h"

void jw_init(struct json_writer *w, FILE *out, bool pretty)
{
	w->out = out;
	w->pretty = pretty;
	w->depth = 0;
	w->first = true;
	w->after_key = false;
}

static void newline(struct json_writer *w)
{
	if (!w->pretty)
		return;
	fputc('\n', w->out);
	for (int i = 0; i < w->depth; i++)
		fputs("    ", w->out);
}

/* Separator and indentation before a value or a key. */
static void before(struct json_writer *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (!w->first)
		fputc(',', w->out);
	if (w->depth)
		newline(w);
	w->first = false;
}

static void open(struct json_writer *w, char c)
{
	before(w);
	fputc(c, w->out);
	w->depth++;
	w->first = true;
}

static void close_(struct json_writer *w, char c)
{
	w->depth--;
	if (!w->first)
		newline(w);
	fputc(c, w->out);
	w->first = false;
}

void jw_obj_start(struct json_writer *w)
{
	open(w, '{');
}

void jw_obj_end(struct json_writer *w)
{
	close_(w, '}');
}

void jw_arr_start(struct json_writer *w)
{
	open(w, '[');
}

void jw_arr_end(struct json_writer *w)
{
	close_(w, ']');
}

static void quoted(struct json_writer *w, const char *s)
{
	fputc('"', w->out);
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			fprintf(w->out, "\\%c", c);
		else if (c < 0x20)
			fprintf(w->out, "\\u%04x", c);
		else
			fputc(c, w->out);
	}
	fputc('"', w->out);
}

void jw_key(struct json_writer *w, const char *key)
{
	before(w);
	quoted(w, key);
	fputs(w->pretty ? ": " : ":", w->out);
	w->after_key = true;
}

void jw_str(struct json_writer *w, const char *s)
{
	before(w);
	quoted(w, s);
}

void jw_u64(struct json_writer *w, uint64_t v)
{
	before(w);
	fprintf(w->out, "%llu", (unsigned long long)v);
}

void jw_bool(struct json_writer *w, bool v)
{
	before(w);
	fputs(v ? "true" : "false", w->out);
}

void jw_kv_str(struct json_writer *w, const char *key, const char *s)
{
	jw_key(w, key);
	jw_str(w, s);
}

void jw_kv_u64(struct json_writer *w, const char *key, uint64_t v)
{
	jw_key(w, key);
	jw_u64(w, v);
}

void jw_end(struct json_writer *w)
{
	fputc('\n', w->out);
}
