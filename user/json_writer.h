/* SPDX-License-Identifier: GPL-2.0 */
/* A small streaming JSON writer for `-j` / `-p` output, as bpftool has. */
#ifndef H2LB_JSON_WRITER_H
#define H2LB_JSON_WRITER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct json_writer {
	FILE *out;
	bool pretty;
	int depth;
	bool first; /* no element yet at this depth */
	bool after_key;
};

void jw_init(struct json_writer *w, FILE *out, bool pretty);
void jw_obj_start(struct json_writer *w);
void jw_obj_end(struct json_writer *w);
void jw_arr_start(struct json_writer *w);
void jw_arr_end(struct json_writer *w);
void jw_key(struct json_writer *w, const char *key);
void jw_str(struct json_writer *w, const char *s);
void jw_u64(struct json_writer *w, uint64_t v);
void jw_bool(struct json_writer *w, bool v);
/* key + value in one call */
void jw_kv_str(struct json_writer *w, const char *key, const char *s);
void jw_kv_u64(struct json_writer *w, const char *key, uint64_t v);
void jw_end(struct json_writer *w); /* final newline */

#endif
